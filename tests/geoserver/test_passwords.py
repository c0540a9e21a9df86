"""Password hashes, and the memory of proven passwords that spares Basic-auth tile requests the slow hash."""

from __future__ import annotations

from geoserver.passwords import VerifiedPasswords, hash_password, verify_nobody, verify_password

FAST = {"n": 2**4}  # the same scrypt, cheap parameters: these tests are about remembering, not cost


class CountingVerifier:
    """The real verify_password, counting how often the slow hash actually runs."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, password: str, stored: str) -> bool:
        self.calls += 1
        return verify_password(password, stored)


def test_hash_and_verify():
    stored = hash_password("s3cret", **FAST)
    assert verify_password("s3cret", stored) and not verify_password("s3cret!", stored)
    assert not verify_password("s3cret", "not$a$valid$hash")
    assert not verify_nobody("s3cret")


def test_a_proven_password_is_not_hashed_again():
    slow = CountingVerifier()
    verified = VerifiedPasswords(verify=slow)
    stored = hash_password("s3cret", **FAST)
    assert not verified.remembered("ann", "s3cret", stored)
    assert all(verified.verify("ann", "s3cret", stored) for _ in range(5))
    assert slow.calls == 1 and verified.remembered("ann", "s3cret", stored)


def test_failures_are_never_remembered():
    slow = CountingVerifier()
    verified = VerifiedPasswords(verify=slow)
    stored = hash_password("s3cret", **FAST)
    assert not any(verified.verify("ann", "guess", stored) for _ in range(3))
    assert slow.calls == 3 and not verified.remembered("ann", "guess", stored)


def test_a_new_stored_hash_forgets_the_old_password():
    verified = VerifiedPasswords()
    old = hash_password("s3cret", **FAST)
    assert verified.verify("ann", "s3cret", old)
    new = hash_password("changed", **FAST)
    assert not verified.verify("ann", "s3cret", new)
    assert verified.verify("ann", "changed", new)


def test_the_entry_is_bound_to_the_username_and_the_password():
    verified = VerifiedPasswords()
    stored = hash_password("s3cret", **FAST)
    assert verified.verify("ann", "s3cret", stored)
    assert not verified.remembered("bob", "s3cret", stored)
    assert not verified.remembered("ann", "s3cre", stored)
    assert not verified.remembered("ann:s3cret", "", stored)  # the parts cannot be shifted into each other


def test_the_memory_is_bounded_and_keeps_the_recently_used():
    slow = CountingVerifier()
    verified = VerifiedPasswords(size=2, verify=slow)
    hashes = {name: hash_password(name, **FAST) for name in ("a", "b", "c")}
    for name in ("a", "b"):
        verified.verify(name, name, hashes[name])
    verified.verify("a", "a", hashes["a"])  # a is used again: b is now the oldest
    verified.verify("c", "c", hashes["c"])
    assert verified.remembered("a", "a", hashes["a"]) and verified.remembered("c", "c", hashes["c"])
    assert not verified.remembered("b", "b", hashes["b"])

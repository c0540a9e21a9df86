"""Password hashing with the standard library's scrypt: `scrypt$n$r$p$salt_b64$hash_b64`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable

N, R, P = 2**14, 8, 1


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """The stored form of a password (a fresh random salt each time)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True if `password` matches the stored hash (constant-time compare); False for a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(expected), maxmem=2**26)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


# The hash of a random password nobody knows, at the default cost. A constant, not made at first use: the
# first unknown name a process sees must not take twice as long (hashing the decoy, then checking it).
DECOY_HASH = "scrypt$16384$8$1$LeQCHIqoVb3A9+p+r9kH5A==$F76/aaXYDLQdm73Xb1rOW+HNIMdpCDp9a4BlmNTy6Ho="


def verify_nobody(password: str) -> bool:
    """False, after as much work as checking a real account's password: an unknown name takes as long."""
    verify_password(password, DECOY_HASH)
    return False


class VerifiedPasswords:
    """Remembers successful password checks so a GIS client sending Basic credentials on every tile request
    pays the slow hash once, not per request.

    An entry is an HMAC, under a random key of this process, of the username, the supplied password and the
    stored hash (the password itself is never kept): a changed password changes the stored hash, so the old
    one misses at once. Failures are never remembered. Whether the
    account still exists, or may still log in, is for the caller to check on every request.
    """

    def __init__(self, size: int = 4096, verify: Callable[[str, str], bool] = verify_password) -> None:
        self._key = secrets.token_bytes(32)
        self._size = size
        self._verify = verify
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def _entry(self, username: str, password: str, stored: str) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (username, password, stored):
            data = part.encode("utf-8", "surrogatepass")
            mac.update(len(data).to_bytes(4, "big") + data)  # length-prefixed: no two splits look alike
        return mac.digest()

    def remembered(self, username: str, password: str, stored: str) -> bool:
        """True if this password was already proven right against this very stored hash (no slow hash)."""
        entry = self._entry(username, password, stored)
        with self._lock:
            if entry in self._seen:
                self._seen.move_to_end(entry)
                return True
        return False

    def verify(self, username: str, password: str, stored: str) -> bool:
        """True if `password` matches `stored` (the account's hash); slow only until it has once succeeded."""
        if self.remembered(username, password, stored):
            return True
        if not self._verify(password, stored):
            return False
        with self._lock:
            self._seen[self._entry(username, password, stored)] = None
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)
        return True

"""Who may touch what. The one place a (principal, layer, action) becomes a Scope of township codes.

Stores apply a Scope inside the query itself (SQL WHERE), never as a filter after fetching.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """The township codes a caller may touch on one layer for one action; `None` means every township."""

    townships: frozenset[str] | None

    @classmethod
    def everything(cls) -> Scope:
        """No township restriction (admins, the county operator, internal jobs)."""
        return cls(None)

    @classmethod
    def nothing(cls) -> Scope:
        """No township at all: every read is empty, every write refused."""
        return cls(frozenset())

    @classmethod
    def of(cls, codes: Iterable[str]) -> Scope:
        """Exactly these township codes."""
        return cls(frozenset(codes))

    @property
    def unrestricted(self) -> bool:
        """True when no township restriction applies."""
        return self.townships is None

    def allows(self, township_code: str | None) -> bool:
        """True if a feature keyed by `township_code` lies within the scope."""
        return self.townships is None or (township_code is not None and township_code in self.townships)

    def cache_key(self) -> str:
        """A stable text for caches whose entries depend on the scope."""
        return "*" if self.townships is None else ",".join(sorted(self.townships))

"""Domain errors. The core raises these; api/errors.py maps each class to one HTTP status."""

from __future__ import annotations


class OneMapError(Exception):
    """Base class of every error the core raises on purpose."""

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter


class BadInput(OneMapError):
    """The caller sent something malformed; `parameter` names what, the message says what was expected."""


class TooLarge(BadInput):
    """The request, or a part of it, is larger or more complex than the server accepts."""


class Unprocessable(BadInput):
    """Well-formed input that names something the server cannot act on (a point outside the county)."""


class UnsupportedMediaType(BadInput):
    """A body or file whose bytes are not of a kind the server takes here (it names those it takes)."""


class NotFound(OneMapError):
    """No such layer, feature or resource -- or one the caller may not see (existence must not leak)."""


class Unauthorized(OneMapError):
    """The caller did not prove who they are (missing, expired or bad credentials)."""


class Forbidden(OneMapError):
    """The caller is known and may see the resource but may not do this action on it."""


class Conflict(OneMapError):
    """The request clashes with the current state (duplicate id, illegal workflow step); `members` are extra
    fields of the problem answer that let a client resolve it (the id of what is in the way)."""

    def __init__(self, message: str, *, parameter: str | None = None, members: dict | None = None) -> None:
        super().__init__(message, parameter=parameter)
        self.members = dict(members or {})


class TooManyRequests(OneMapError):
    """Too many attempts (failed logins): the caller may try again after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int, parameter: str | None = None) -> None:
        super().__init__(message, parameter=parameter)
        self.retry_after = retry_after


class PreconditionFailed(OneMapError):
    """An If-Match precondition did not hold: someone else changed the feature first."""


class LoadError(BadInput):
    """A file being loaded is invalid; names the file, the row and the field."""

    def __init__(self, message: str, *, file: str, row: int | None = None, field: str | None = None) -> None:
        where = file + (f", row {row}" if row is not None else "") + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {message}", parameter=field)
        self.file = file
        self.row = row
        self.field = field


class StoreUnavailable(OneMapError):
    """The store cannot be reached or is not set up (no schema, no file).

    `retry_after` (seconds) is set when the trouble is passing (the database is down or busy): a client may
    retry then; it is None when retrying will not help until someone acts (no schema, no file).
    """

    def __init__(self, message: str, *, parameter: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, parameter=parameter)
        self.retry_after = retry_after

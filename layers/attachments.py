"""Photos and files on events: upload to an event, list, read back -- only for those who may read the event.

An upload is one transaction: the metadata row, the bytes, the event's `attachment_count` (so the event's
ETag and the change log move, and every live screen learns) and an `attach` timeline row. Its kind comes from
its bytes (layers/attachment_files.py); a photo's EXIF position is kept with it and never routes anything.
Who may attach: whoever may read the event and may edit events in its township, its assignee or its reporter,
while it is open. A phone reporting offline sends the report first, then its photos (each with its own
Idempotency-Key): there is no upload area of unlinked files to scope, quota and purge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from geoserver.access import Principal, scope_for
from geoserver.catalog import Catalog
from geoserver.errors import BadInput, Conflict, Forbidden, NotFound, PreconditionFailed, TooLarge
from geoserver.features import Feature
from geoserver.store import Store
from layers import dispatch
from layers.attachment_files import clean_name, exif_position, sniff
from layers.attachment_tables import ATTACHMENTS, BLOBS

DEFAULT_MAX_MB = 10.0
MAX_NOTE = dispatch.MAX_NOTE
# Uploads to one event that meet at the event's row take turns: the loser of a round re-runs its transaction.
ATTEMPTS = 20
T = TypeVar("T")


def _event(store: Store, catalog: Catalog, principal: Principal, event_id: int) -> Feature:
    """The event if the principal may read it (NotFound otherwise, as for the event itself)."""
    return store.get(dispatch.LAYER, event_id, scope_for(principal, catalog.get(dispatch.LAYER), "read"))


def check_file(content: bytes, max_bytes: int) -> str:
    """The media type of an upload's bytes: BadInput when empty, TooLarge past the limit, UnsupportedMediaType
    when they are none of the kinds taken."""
    if not content:
        raise BadInput("file is empty", parameter="file")
    if len(content) > max_bytes:
        raise TooLarge(f"file is larger than the {max_bytes / 2**20:.3g} MB an attachment may have "
                       f"(ONEMAP_MAX_ATTACHMENT_MB)", parameter="file")
    return sniff(content)


def upload(store: Store, catalog: Catalog, principal: Principal, event_id: int, *, content: bytes,
           filename: str | None, note: str | None, max_bytes: int) -> dict[str, Any]:
    """Store one file on an event as `principal` (joins an open transaction); returns its metadata.

    Raises:
        NotFound: no such event, or one the principal may not read.
        Forbidden: the principal may read it but not attach to it.
        Conflict: the event is finished (closed, rejected, merged).
        BadInput / TooLarge / UnsupportedMediaType: the file (empty, too large, not a kind taken), the note.
        PreconditionFailed: another write to the event landed meanwhile (see `retrying`).
    """
    kind = check_file(content, max_bytes)
    if note is not None and len(note) > MAX_NOTE:
        raise BadInput(f"note must be at most {MAX_NOTE} characters", parameter="note")
    position = exif_position(content, kind)
    with store.transaction(actor=principal.username):
        event = _event(store, catalog, principal, event_id)
        _check_may_attach(principal, catalog, event)
        row = store.add_row(ATTACHMENTS, {
            "event_id": event_id, "uploaded_at": dispatch.now(), "uploader": principal.username,
            "filename": clean_name(filename, kind), "media_type": kind, "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(), "note": note,
            "lon": position.lon if position else None, "lat": position.lat if position else None})
        store.add_row(BLOBS, {"attachment_id": row["id"], "content": content})
        count = store.count_rows(ATTACHMENTS, {"event_id": event_id})
        # Conditional on the version read: two uploads at once both count, one after the other.
        dispatch._write(store, event, {"attachment_count": count}, if_match=event.etag())
        status = event.properties.get("status")
        dispatch.add_timeline(store, event_id, principal.username, "attach", from_status=status, to_status=status,
                              note=note, data={"attachment": row["id"], "filename": row["filename"],
                                               "media_type": kind, "size": len(content)})
        return public(row)


def retrying(attempt: Callable[[], T]) -> T:
    """Run `attempt` (a whole transaction) again while another write to the same event wins the race."""
    for _ in range(ATTEMPTS - 1):
        try:
            return attempt()
        except PreconditionFailed:
            continue
    try:
        return attempt()
    except PreconditionFailed:
        raise Conflict("the event kept changing while the file was stored; retry", parameter="eventId") from None


def _check_may_attach(principal: Principal, catalog: Catalog, event: Feature) -> None:
    props = event.properties
    editor = scope_for(principal, catalog.get(dispatch.LAYER), "update").allows(props.get("township_code"))
    own = not principal.is_anonymous and principal.username in (props.get("assignee"), props.get("reporter"))
    if not (editor or own):
        raise Forbidden("only those who edit events of its township, its assignee or its reporter attach files "
                        "to an event", parameter="eventId")
    if props.get("status") not in dispatch.OPEN:
        raise Conflict(f"event {event.id} is {props.get('status')}: files are attached while it is open",
                       parameter="eventId")


def public(row: dict[str, Any]) -> dict[str, Any]:
    """The metadata of an attachment as the API shows it."""
    location = {"lon": row["lon"], "lat": row["lat"]} if row.get("lon") is not None else None
    return {"id": row["id"], "event_id": row["event_id"], "filename": row["filename"],
            "media_type": row["media_type"], "size": row["size"], "sha256": row["sha256"],
            "uploaded_at": row["uploaded_at"], "uploader": row["uploader"], "note": row["note"],
            "action": row["action"], "exif_location": location,
            "href": f"/events/{row['event_id']}/attachments/{row['id']}"}


def list_attachments(store: Store, catalog: Catalog, principal: Principal, event_id: int) -> list[dict[str, Any]]:
    """The attachments of an event the principal may read (NotFound otherwise), oldest first."""
    _event(store, catalog, principal, event_id)
    return [public(r) for r in store.rows(ATTACHMENTS, {"event_id": event_id})]


def read(store: Store, catalog: Catalog, principal: Principal, event_id: int,
         attachment_id: int) -> tuple[dict[str, Any], bytes]:
    """(metadata, bytes) of one attachment of an event the principal may read; NotFound otherwise."""
    _event(store, catalog, principal, event_id)
    found = store.rows(ATTACHMENTS, {"id": attachment_id, "event_id": event_id}, limit=1)
    if not found:
        raise NotFound(f"event {event_id} has no attachment {attachment_id}", parameter="attachmentId")
    [blob] = store.rows(BLOBS, {"attachment_id": attachment_id}, limit=1)
    return public(found[0]), blob["content"]

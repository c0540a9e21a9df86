"""The photos and files of events: their metadata and their bytes, two domain tables in both stores, and the
linking of uploaded ones to a dispatch action (`attachments: [ids]` in an action's body)."""

from __future__ import annotations

from typing import Any

from geoserver.catalog import Property, Table
from geoserver.errors import BadInput
from geoserver.store import Store

ATTACHMENTS = "event_attachments"
BLOBS = "event_attachment_blobs"
MAX_LINKED = 20

EVENT_ATTACHMENTS = Table(
    id=ATTACHMENTS,
    title="Event attachments",
    description="Photos and files of events: who uploaded what when, its kind (from its bytes), size, hash, "
                "the photo's EXIF position (never used for routing) and the action it was linked to.",
    columns=(
        Property("event_id", "integer", "Event", required=True),
        Property("uploaded_at", "datetime", "Uploaded at", required=True),
        Property("uploader", "string", "Uploaded by"),
        Property("filename", "string", "File name", required=True),
        Property("media_type", "string", "Media type (from the bytes)", required=True),
        Property("size", "integer", "Size in bytes", required=True),
        Property("sha256", "string", "SHA-256 of the bytes", required=True),
        Property("lon", "number", "EXIF longitude"),
        Property("lat", "number", "EXIF latitude"),
        Property("action", "string", "Dispatch action it was linked to"),
        Property("note", "string", "Note"),
    ),
)

ATTACHMENT_BLOBS = Table(
    id=BLOBS,
    title="Event attachment bytes",
    description="The bytes of each attachment, apart from its metadata so lists never read them.",
    columns=(
        Property("attachment_id", "integer", "Attachment", required=True),
        Property("content", "binary", "Bytes", required=True),
    ),
)

TABLES = (EVENT_ATTACHMENTS, ATTACHMENT_BLOBS)


def link(store: Store, event_id: int, ids: Any, action: str) -> list[int]:
    """Link uploaded attachments of the event to `action` (inside its transaction); returns their ids.

    BadInput naming `attachments` for anything but a list of ids of this event's attachments not linked yet.
    """
    if not isinstance(ids, list) or not ids or len(ids) > MAX_LINKED or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in ids) or len(set(ids)) != len(ids):
        raise BadInput(f"attachments must be a list of 1-{MAX_LINKED} distinct attachment ids", parameter="attachments")
    rows = {r["id"]: r for r in store.rows(ATTACHMENTS, {"id": ids, "event_id": event_id}, for_update=True)}
    for i in ids:
        if i not in rows:
            raise BadInput(f"attachments: {i} is no attachment of event {event_id} (upload it first: "
                           f"POST /events/{event_id}/attachments)", parameter="attachments")
        if rows[i]["action"] is not None:
            raise BadInput(f"attachments: {i} is linked to {rows[i]['action']!r} already", parameter="attachments")
    store.update_rows(ATTACHMENTS, {"id": ids}, {"action": action})
    return ids

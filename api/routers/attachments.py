"""Photos and files of events over HTTP: upload (multipart/form-data), list, and the bytes back. Parse, call
layers/attachments.py, serialise."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from api.auth import get_principal
from api.bodies import iso, json_response, path_id
from api.links import base_url
from geoserver import idempotency
from geoserver.access import Principal
from geoserver.errors import BadInput, UnsupportedMediaType
from layers import attachments
from layers.attachment_files import KINDS

router = APIRouter(tags=["Event dispatch"])
BINARY = {"type": "string", "format": "binary"}
METADATA = {"type": "object", "required": ["id", "event_id", "filename", "media_type", "size", "sha256", "href"],
            "properties": {"id": {"type": "integer"}, "event_id": {"type": "integer"},
                           "filename": {"type": "string"}, "media_type": {"type": "string", "enum": list(KINDS)},
                           "size": {"type": "integer"}, "sha256": {"type": "string"},
                           "uploaded_at": {"type": "string", "format": "date-time"},
                           "uploader": {"type": "string", "nullable": True}, "note": {"type": "string", "nullable": True},
                           "action": {"type": "string", "nullable": True},
                           "exif_location": {"type": "object", "nullable": True,
                                             "properties": {"lon": {"type": "number"}, "lat": {"type": "number"}}},
                           "href": {"type": "string"}}}
UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {**BINARY, "description": f"One photo or file: {', '.join(KINDS)}."},
                   "note": {"type": "string", "maxLength": attachments.MAX_NOTE}}}}}}
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
               "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH},
               "description": "Retries with the same key and file get the first answer again."}


async def _form_file(request: Request) -> tuple[UploadFile, str | None]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise UnsupportedMediaType(f"send the file as multipart/form-data (a part named 'file'); got "
                                   f"{ctype or 'no Content-Type'!r}", parameter="Content-Type")
    try:
        form = await request.form(max_files=2, max_fields=4)
    except HTTPException as exc:  # the multipart parser's own refusals (broken form, a part header over 8 KB)
        raise BadInput(f"file: the multipart form could not be read ({exc.detail}); a part's headers, its file "
                       f"name included, must stay under 8 KB", parameter="file") from None
    files = [v for k, v in form.multi_items() if k == "file"]
    if len(files) != 1 or not isinstance(files[0], UploadFile):
        raise BadInput("the form must have exactly one file part named 'file'", parameter="file")
    note = form.get("note")
    if note is not None and not isinstance(note, str):
        raise BadInput("note must be text", parameter="note")
    return files[0], note


@router.post("/events/{event_id}/attachments", status_code=201, response_class=Response, openapi_extra={
    "requestBody": UPLOAD_BODY, "parameters": [IDEMPOTENCY]}, responses={
    201: {"description": "The stored attachment's metadata.", "content": {"application/json": {"schema": METADATA}}},
    409: {"description": "The event is finished, or the key's first request is still running."},
    413: {"description": "The file is larger than ONEMAP_MAX_ATTACHMENT_MB."},
    415: {"description": "Not multipart/form-data, or the bytes are none of the kinds taken."},
    422: {"description": "The Idempotency-Key was used for another request."}})
async def upload(event_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Attach one photo or file to an event (multipart/form-data: `file`, optional `note`); its kind comes from
    its bytes (JPEG, PNG, WebP, HEIC/HEIF, PDF), a photo's EXIF position is kept (never used for routing).
    Idempotency-Key is honoured; 201 with the metadata."""
    fid = path_id(event_id, "event", "eventId")
    part, note = await _form_file(request)
    limit = request.app.state.settings.max_attachment_bytes
    content = await part.read(limit + 1)
    store, catalog = request.app.state.store, request.app.state.catalog
    header = request.headers.get(idempotency.HEADER)
    key = idempotency.parse_key(header) if header is not None else None

    def stored() -> dict[str, Any]:
        meta = attachments.upload(store, catalog, principal, fid, content=content, filename=part.filename,
                                  note=note, max_bytes=limit)
        return {"status": 201, "body": json.loads(json.dumps(meta, default=iso)),
                "headers": {"Location": f"{base_url(request)}{meta['href']}", "ETag": f'"{meta["sha256"]}"'}}

    def attempt() -> tuple[dict[str, Any], bool]:
        if key is None:
            return stored(), False
        fingerprint = idempotency.request_hash(hashlib.sha256(content).hexdigest(), part.filename, note)
        return idempotency.run_once(store, principal.username, f"POST /events/{fid}/attachments", key, fingerprint,
                                    stored)

    written, replayed = await run_in_threadpool(attachments.retrying, attempt)
    headers = {**written["headers"], **({"Idempotent-Replayed": "true"} if replayed else {})}
    return json_response(written["body"], written["status"], **headers)


@router.get("/events/{event_id}/attachments", responses={200: {"description": "The event's attachments.",
            "content": {"application/json": {"schema": {"type": "object", "properties": {
                "event": {"type": "integer"}, "attachments": {"type": "array", "items": METADATA}}}}}}},
            response_class=Response)
def list_attachments(event_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """The photos and files of an event, oldest first (404 if you may not read the event)."""
    fid = path_id(event_id, "event", "eventId")
    rows = attachments.list_attachments(request.app.state.store, request.app.state.catalog, principal, fid)
    return json_response({"event": fid, "attachments": rows})


@router.get("/events/{event_id}/attachments/{attachment_id}", response_class=Response, responses={
    200: {"description": "The bytes, as their kind.", "content": {k: {"schema": BINARY} for k in KINDS},
          "headers": {"ETag": {"schema": {"type": "string"}}}},
    304: {"description": "Not modified (If-None-Match)."}})
def read_attachment(event_id: str, attachment_id: str, request: Request,
                    principal: Principal = Depends(get_principal)) -> Response:
    """One photo or file of an event, with its Content-Type and ETag (404 if you may not read the event)."""
    fid = path_id(event_id, "event", "eventId")
    aid = path_id(attachment_id, "attachment", "attachmentId")
    meta, content = attachments.read(request.app.state.store, request.app.state.catalog, principal, fid, aid)
    etag = f'"{meta["sha256"]}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'; sandbox"}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    disposition = "inline" if meta["media_type"].startswith("image/") else "attachment"
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in meta["filename"])
    headers["Content-Disposition"] = f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(meta['filename'])}"
    return Response(content, media_type=meta["media_type"], headers=headers)

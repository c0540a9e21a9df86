"""The rules every write path checks, whatever the store: ids, ETags, the caller's townships, batch errors."""

from __future__ import annotations

from typing import Any

from geoserver.access import Scope
from geoserver.catalog import TOWNSHIP_KEY, Layer
from geoserver.errors import BadInput, Forbidden, NotFound, PreconditionFailed
from geoserver.features import Feature, check_feature


def checked_at(layer: Layer, feature: Feature, index: int, total: int) -> Feature:
    """check_feature, naming the feature's position when it is one of several."""
    try:
        return check_feature(layer, feature)
    except BadInput as exc:
        if total == 1:
            raise
        raise BadInput(f"feature {index}: {exc.message}", parameter=exc.parameter) from None


def check_etag(current: Feature, if_match: str | None) -> None:
    """PreconditionFailed unless If-Match names the current version (or is `*`)."""
    if if_match is None or if_match.strip() == "*":
        return
    if current.etag() not in {tag.strip() for tag in if_match.split(",")}:
        raise PreconditionFailed(
            f"feature {current.id} has changed (ETag {current.etag()}); fetch it again and retry",
            parameter="If-Match")


def feature_id(fid: Any) -> int:
    """A feature id as an int, or NotFound (ids are integers; anything else names no feature)."""
    if isinstance(fid, bool):
        raise NotFound(f"no feature {fid!r}", parameter="featureId")
    try:
        value = int(fid)
    except (TypeError, ValueError):
        raise NotFound(f"no feature {fid!r}", parameter="featureId") from None
    if not -(2**63) <= value < 2**63:
        raise NotFound(f"no feature {fid!r}", parameter="featureId")
    return value


def require_scope(layer: Layer, scope: Scope, props: dict[str, Any]) -> None:
    """Forbidden when the feature's township lies outside the townships the caller may write, or when it is not
    the caller's own where only his own may be written (Scope.owner)."""
    code = props.get(TOWNSHIP_KEY)
    if not scope.allows(code):
        where = f"township {code!r}" if code is not None else "no township of the county"
        raise Forbidden(f"this feature lies in {where}, outside the townships you may edit in {layer.id!r}",
                        parameter=TOWNSHIP_KEY)
    if scope.owner is not None and props.get(scope.owner[0]) != scope.owner[1]:
        name, value = scope.owner
        raise Forbidden(f"in {layer.id!r} you may write only features whose {name} is {value!r}", parameter=name)

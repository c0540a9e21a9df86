"""Vector tiles built by PostGIS in one statement: ST_TileEnvelope / ST_MakeEnvelope, ST_AsMVTGeom, ST_AsMVT."""

from __future__ import annotations

from typing import Any

from geoserver.access import Scope
from geoserver.catalog import Layer
from geoserver.features import FeatureQuery
from geoserver.store.migrate import MERCATOR_COLUMN
from geoserver.store.postgis_sql import DIALECT
from geoserver.store.where import Dialect, build_where, scope_clause
from geoserver.vectortile import CLUSTER_COUNT, TileRequest

GEOM = "geom"


class _Params(Dialect):
    """Only what the scope clause needs: psycopg's placeholder."""

    name = "postgis-mvt"
    placeholder = "%s"


def _column(layer: Layer, name: str) -> str:
    """The select expression of one property, written the way the embedded engine writes it."""
    q = _Params().quote(name)
    kind = layer.prop(name).type
    if kind == "datetime":
        return f"""to_char(t.{q} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS {q}"""
    if kind == "date":
        return f"to_char(t.{q}, 'YYYY-MM-DD') AS {q}"
    return f"t.{q}"


def _projected(layer: Layer, request: TileRequest) -> str:
    """The geometry in the tile's CRS: the stored Web Mercator copy where the layer keeps one."""
    if layer.mercator_copy and int(request.epsg) == 3857:
        return f"t.{MERCATOR_COLUMN}"
    return f"ST_Transform(t.{GEOM}, {int(request.epsg)})"


def _envelope(request: TileRequest) -> tuple[str, list[Any]]:
    if request.web_mercator:
        return "ST_TileEnvelope(%s, %s, %s)", [request.z, request.x, request.y]
    return "ST_MakeEnvelope(%s, %s, %s, %s, %s)", [*request.bounds, request.epsg]


def _filters(layer: Layer, request: TileRequest, scope: Scope, bbox) -> tuple[str, list[Any]]:
    clauses = [f"t.{GEOM} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"]
    params: list[Any] = list(bbox)
    if request.filter is not None or request.datetime is not None:
        # The items' own compiler: scope, datetime and the filter, checked against the declared properties.
        where = build_where(DIALECT, layer, FeatureQuery(filter=request.filter, datetime=request.datetime,
                                                         limit=0), scope)
        clauses += where.clauses
        params += where.params
        return " AND ".join(clauses), params
    sc = scope_clause(_Params(), scope)
    if sc:
        clauses.append(sc[0])
        params += sc[1]
    return " AND ".join(clauses), params


def tile_sql(layer: Layer, request: TileRequest, scope: Scope) -> tuple[str, list[Any]]:
    """The one SQL statement (and its parameters) answering a TileRequest with MVT bytes (NULL if empty)."""
    if request.cluster_cell:
        return _cluster_sql(layer, request, scope)
    env, env_params = _envelope(request)
    where, where_params = _filters(layer, request, scope, request.lonlat_bbox)
    geom = _projected(layer, request)
    simplify_params: list[Any] = []
    if request.tolerance > 0 and not layer.geometry_type.endswith("Point"):
        geom = f"ST_Simplify({geom}, %s)"
        simplify_params = [request.tolerance * request.units_per_pixel]
    cols = "".join(", " + _column(layer, p) for p in request.properties)
    # OFFSET 0 keeps `q.geom IS NOT NULL` out of the subquery: pushed down, PostgreSQL evaluated ST_AsMVTGeom
    # (with its transform and simplification) twice a row, once for the filter and once for the output --
    # a third of the tile's time on the polygon layers.
    sql = (
        f"WITH env AS (SELECT {env} AS e) "
        f"SELECT ST_AsMVT(q, %s, %s, 'geom', 'fid') FROM ("
        f"SELECT t.fid, ST_AsMVTGeom({geom}, env.e::box2d, %s, %s, true) AS geom{cols} "
        f"FROM {_Params().quote(layer.id)} t, env WHERE {where} ORDER BY t.fid OFFSET 0"
        f") q WHERE q.geom IS NOT NULL"
    )
    params = [*env_params, layer.id, request.extent, *simplify_params, request.extent, request.buffer,
              *where_params]
    return sql, params


def _cluster_sql(layer: Layer, request: TileRequest, scope: Scope) -> tuple[str, list[Any]]:
    """Grid clustering: one point per occupied cell at the mean position of its points, with its counts."""
    minx, miny, maxx, maxy = request.bounds
    where, where_params = _filters(layer, request, scope, request.lonlat_bbox)
    ext, cell = request.extent, request.cluster_cell
    flags, flag_params = "", []
    for i, (_, prop, values) in enumerate(request.cluster_counts):
        column = _Params().quote(layer.prop(prop).name)
        flags += f", coalesce((t.{column} IN ({', '.join(['%s'] * len(values))}))::int, 0) AS k{i}"
        flag_params += list(values)
    ks = "".join(f", k{i}" for i in range(len(request.cluster_counts)))
    sums = "".join(f", sum(k{i}) AS k{i}" for i in range(len(request.cluster_counts)))
    outs = "".join(f", k{i}::int AS {_Params().quote(name)}" for i, (name, _, _) in enumerate(request.cluster_counts))
    sql = (
        f"WITH p AS (SELECT (ST_X(g) - %s::float8) * %s::float8 / (%s::float8 - %s::float8) AS px, "
        f"(%s::float8 - ST_Y(g)) * %s::float8 / (%s::float8 - %s::float8) AS py{ks} "
        f"FROM (SELECT {_projected(layer, request)} AS g{flags} "
        f"FROM {_Params().quote(layer.id)} t WHERE {where}) s), "
        f"inside AS (SELECT px, py{ks} FROM p WHERE px >= 0 AND px < %s AND py >= 0 AND py < %s), "
        f"c AS (SELECT floor(px / %s) AS cx, floor(py / %s) AS cy, count(*) AS n, avg(px) AS ax, avg(py) AS ay{sums} "
        f"FROM inside GROUP BY 1, 2) "
        f"SELECT ST_AsMVT(q, %s, %s, 'geom') FROM ("
        f"SELECT ST_MakePoint(floor(ax + 0.5), floor(ay + 0.5)) AS geom, n::int AS {CLUSTER_COUNT}{outs} "
        f"FROM c ORDER BY cy, cx) q"
    )
    params = [minx, ext, maxx, minx, maxy, ext, maxy, miny, *flag_params, *where_params, ext, ext, cell, cell,
              layer.id, ext]
    return sql, params


def numbered(sql: str) -> str:
    """The statement with $1, $2, ... for psycopg's %s placeholders (asyncpg's style), in order."""
    if "%%" in sql:
        raise ValueError("a literal % in a tile statement")  # never written by tile_sql; refuse rather than guess
    parts = sql.split("%s")
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, 1))


def render(conn, layer: Layer, request: TileRequest, scope: Scope) -> bytes:
    """The MVT bytes of one layer of one tile, from an open psycopg connection (b'' when empty)."""
    sql, params = tile_sql(layer, request, scope)
    row = conn.execute(sql, params).fetchone()
    return bytes(row[0]) if row and row[0] else b""

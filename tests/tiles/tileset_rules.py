"""An independent reading of glb files and the OGC 3D Tiles 1.1 rules a tileset.json must keep."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
from pyproj import Transformer

_TO_GEODETIC = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)
# glTF is y-up; 3D Tiles turns glb content z-up with this fixed rotation before the tile transform.
Y_UP_TO_Z_UP = np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype="float64")


def read_glb(data: bytes) -> tuple[dict, bytes]:
    """The JSON and binary chunks of a glb."""
    magic, version, total = struct.unpack_from("<4sII", data)
    assert magic == b"glTF" and version == 2 and total == len(data)
    json_len, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    doc = json.loads(data[20:20 + json_len])
    bin_len, kind = struct.unpack_from("<I4s", data, 20 + json_len)
    assert kind == b"BIN\0"
    return doc, data[28 + json_len:28 + json_len + bin_len]


_DTYPES = {5126: "float32", 5125: "uint32", 5123: "uint16", 5122: "int16", 5121: "uint8", 5120: "int8"}
_WIDTH = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}


def accessor(doc: dict, binary: bytes, index: int) -> np.ndarray:
    """An accessor's values as a numpy array (rows of its type's width), honouring byteStride."""
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype, width = np.dtype(_DTYPES[acc["componentType"]]), _WIDTH[acc["type"]]
    stride = view.get("byteStride", dtype.itemsize * width)
    start = view["byteOffset"] + acc.get("byteOffset", 0)
    rows = np.frombuffer(binary, dtype="uint8", count=stride * (acc["count"] - 1) + dtype.itemsize * width,
                         offset=start)
    rows = np.lib.stride_tricks.as_strided(rows, shape=(acc["count"], dtype.itemsize * width), strides=(stride, 1))
    arr = np.ascontiguousarray(rows).view(dtype).reshape(acc["count"], width)
    return arr if width > 1 else arr[:, 0]


def node_matrix(node: dict) -> np.ndarray:
    """A glTF node's local transform: its matrix (column-major), else translation, rotation and scale."""
    if "matrix" in node:
        return np.array(node["matrix"], dtype="float64").reshape(4, 4).T
    m = np.eye(4)
    x, y, z, w = node.get("rotation", [0, 0, 0, 1])
    m[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                 [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                 [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    m[:3, :3] = m[:3, :3] @ np.diag(node.get("scale", [1, 1, 1]))
    m[:3, 3] = node.get("translation", [0, 0, 0])
    return m


def view_bytes(doc: dict, binary: bytes, index: int) -> bytes:
    """The bytes of one buffer view."""
    view = doc["bufferViews"][index]
    return binary[view["byteOffset"]:view["byteOffset"] + view["byteLength"]]


def property_table(doc: dict, binary: bytes) -> dict[str, list]:
    """The EXT_structural_metadata property table decoded column by column."""
    meta = doc["extensions"]["EXT_structural_metadata"]
    table = meta["propertyTables"][0]
    cls = meta["schema"]["classes"][table["class"]]["properties"]
    n, out = table["count"], {}
    for name, prop in table["properties"].items():
        kind = cls[name]
        raw = view_bytes(doc, binary, prop["values"])
        if kind["type"] == "STRING":
            offsets = np.frombuffer(view_bytes(doc, binary, prop["stringOffsets"]), dtype="uint32")
            out[name] = [raw[offsets[i]:offsets[i + 1]].decode() for i in range(n)]
        elif kind["type"] == "BOOLEAN":
            out[name] = [bool(v) for v in np.unpackbits(np.frombuffer(raw, "uint8"), bitorder="little")[:n]]
        else:
            dtype = {"UINT32": "uint32", "UINT16": "uint16", "FLOAT32": "float32", "INT32": "int32"}
            out[name] = np.frombuffer(raw, dtype=dtype[kind["componentType"]], count=n).tolist()
    return out


def content_lonlat(tile: dict, glb: bytes) -> np.ndarray:
    """The content's vertices as lon/lat (degrees) and ellipsoid height: node, y-up to z-up, tile transform."""
    doc, binary = read_glb(glb)
    node = doc["nodes"][doc["scenes"][doc.get("scene", 0)]["nodes"][0]]
    pos = accessor(doc, binary, doc["meshes"][node["mesh"]]["primitives"][0]["attributes"]["POSITION"])
    pos = pos.astype("float64")
    tile_matrix = np.array(tile["transform"]).reshape(4, 4).T if "transform" in tile else np.eye(4)
    matrix = tile_matrix @ Y_UP_TO_Z_UP @ node_matrix(node)
    ecef = (np.column_stack([pos, np.ones(len(pos))]) @ matrix.T)[:, :3]
    return np.column_stack(_TO_GEODETIC.transform(ecef[:, 0], ecef[:, 1], ecef[:, 2]))


def _inside(inner: list[float], outer: list[float], eps: float = 1e-9) -> bool:
    return (inner[0] >= outer[0] - eps and inner[1] >= outer[1] - eps and inner[2] <= outer[2] + eps
            and inner[3] <= outer[3] + eps and inner[4] >= outer[4] - 1e-3 and inner[5] <= outer[5] + 1e-3)


def check_tileset(tileset: dict, contents: dict[str, bytes]) -> list[str]:
    """Every 3D Tiles 1.1 rule this tileset breaks (empty when it keeps them all)."""
    problems: list[str] = []
    if tileset.get("asset", {}).get("version") != "1.1":
        problems.append("asset.version must be '1.1'")
    for key in ("geometricError", "root"):
        if key not in tileset:
            problems.append(f"tileset lacks the required {key!r}")
    if problems:
        return problems
    root = tileset["root"]
    if root.get("refine") not in ("ADD", "REPLACE"):
        problems.append("root.refine must be ADD or REPLACE")
    if root["geometricError"] > tileset["geometricError"]:
        problems.append("root geometricError exceeds the tileset's")

    def visit(tile: dict, path: str, parent: dict | None) -> None:
        region = tile.get("boundingVolume", {}).get("region")
        if not region or len(region) != 6:
            problems.append(f"{path}: needs a region bounding volume of six numbers")
            return
        w, s, e, n, lo, hi = region
        if not (-math.pi <= w <= e <= math.pi and -math.pi / 2 <= s <= n <= math.pi / 2 and lo <= hi):
            problems.append(f"{path}: region out of range or inverted")
        if "geometricError" not in tile or tile["geometricError"] < 0:
            problems.append(f"{path}: needs a non-negative geometricError")
        if parent is not None:
            if not _inside(region, parent["boundingVolume"]["region"]):
                problems.append(f"{path}: region not inside its parent's")
            if not (tile["geometricError"] < parent["geometricError"]):
                problems.append(f"{path}: geometricError does not decrease with depth")
        if "content" in tile:
            uri = tile["content"]["uri"]
            if uri not in contents:
                problems.append(f"{path}: content {uri} not served")
            else:
                pts = content_lonlat(tile, contents[uri])
                got = [math.radians(pts[:, 0].min()), math.radians(pts[:, 1].min()), math.radians(pts[:, 0].max()),
                       math.radians(pts[:, 1].max()), pts[:, 2].min(), pts[:, 2].max()]
                if not _inside(got, region, eps=1e-8):
                    problems.append(f"{path}: content reaches outside the tile's region")
        for i, child in enumerate(tile.get("children", [])):
            visit(child, f"{path}/{i}", tile)

    visit(root, "root", None)
    return problems

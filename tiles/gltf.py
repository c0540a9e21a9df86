"""glTF 2.0 binary (.glb) of a white-model mesh, with EXT_mesh_features ids and an EXT_structural_metadata table."""

from __future__ import annotations

import json
import struct

import numpy as np

from tiles.extrude import Mesh

ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
FLOAT, UNSIGNED_INT = 5126, 5125
# The buildings' metadata schema: the same names as the `buildings` layer, so 2D and 3D agree.
SCHEMA = {
    "id": "onemap_buildings",
    "classes": {"building": {
        "name": "Building",
        "properties": {
            "id": {"type": "SCALAR", "componentType": "UINT32", "description": "Feature id in the buildings layer"},
            "height": {"type": "SCALAR", "componentType": "FLOAT32", "description": "Height (m)"},
            "floors": {"type": "SCALAR", "componentType": "UINT16", "description": "Floors"},
            "use": {"type": "STRING", "description": "Use"},
            "township_code": {"type": "STRING", "description": "Township"},
            "is_key": {"type": "BOOLEAN", "description": "Key building"},
            "name": {"type": "STRING", "description": "Name"},
        },
    }},
}


class _Buffer:
    """One binary buffer assembled from 8-byte-aligned buffer views."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.views: list[dict] = []
        self.size = 0

    def view(self, data: bytes, target: int | None = None) -> int:
        pad = (-self.size) % 8
        if pad:
            self.chunks.append(b"\0" * pad)
            self.size += pad
        view = {"buffer": 0, "byteOffset": self.size, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.chunks.append(data)
        self.size += len(data)
        self.views.append(view)
        return len(self.views) - 1

    def data(self) -> bytes:
        blob = b"".join(self.chunks)
        return blob + b"\0" * ((-len(blob)) % 4)


def _strings(buf: _Buffer, values: list[str]) -> dict:
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype("uint32")
    return {"values": buf.view(b"".join(encoded) or b"\0"), "stringOffsets": buf.view(offsets.tobytes()),
            "stringOffsetType": "UINT32"}


def _property_table(buf: _Buffer, mesh: Mesh) -> dict:
    b = mesh.buildings
    bits = np.packbits(np.array([x.is_key for x in b], dtype=bool), bitorder="little")
    return {
        "class": "building",
        "count": len(b),
        "properties": {
            "id": {"values": buf.view(np.array([x.id for x in b], dtype="uint32").tobytes())},
            "height": {"values": buf.view(np.array([x.height for x in b], dtype="float32").tobytes())},
            "floors": {"values": buf.view(np.array([x.floors for x in b], dtype="uint16").tobytes())},
            "use": _strings(buf, [x.use for x in b]),
            "township_code": _strings(buf, [x.township_code for x in b]),
            "is_key": {"values": buf.view(bits.tobytes())},
            "name": _strings(buf, [x.name for x in b]),
        },
    }


def to_glb(mesh: Mesh) -> bytes:
    """The mesh as a glb, y-up as glTF wants (3D Tiles turns it z-up); one primitive, one feature per building."""
    buf = _Buffer()
    # East-north-up to glTF's y-up: x = east, y = up, z = -north (a proper rotation, so winding is kept).
    yup = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype="float32")
    positions = (mesh.positions @ yup.T).astype("float32")
    normals = (mesh.normals @ yup.T).astype("float32")
    indices = np.arange(len(positions), dtype="uint32")
    accessors = []

    def accessor(array: np.ndarray, kind: str, component: int, target: int, bounds: bool = False) -> int:
        acc = {"bufferView": buf.view(np.ascontiguousarray(array).tobytes(), target), "componentType": component,
               "count": len(array), "type": kind}
        if bounds:
            acc["min"] = [float(v) for v in array.min(axis=0)]
            acc["max"] = [float(v) for v in array.max(axis=0)]
        accessors.append(acc)
        return len(accessors) - 1

    attributes = {
        "POSITION": accessor(positions, "VEC3", FLOAT, ARRAY_BUFFER, bounds=True),
        "NORMAL": accessor(normals, "VEC3", FLOAT, ARRAY_BUFFER),
        "COLOR_0": accessor(mesh.colours.astype("float32"), "VEC3", FLOAT, ARRAY_BUFFER),
        "_FEATURE_ID_0": accessor(mesh.feature_ids.astype("float32"), "SCALAR", FLOAT, ARRAY_BUFFER),
    }
    index_accessor = accessor(indices, "SCALAR", UNSIGNED_INT, ELEMENT_ARRAY_BUFFER)
    table = _property_table(buf, mesh)
    primitive = {
        "attributes": attributes, "indices": index_accessor, "material": 0, "mode": 4,
        "extensions": {"EXT_mesh_features": {"featureIds": [
            {"featureCount": len(mesh.buildings), "attribute": 0, "propertyTable": 0}]}},
    }
    gltf = {
        "asset": {"version": "2.0", "generator": "onemap white model"},
        "extensionsUsed": ["EXT_mesh_features", "EXT_structural_metadata"],
        "extensions": {"EXT_structural_metadata": {"schema": SCHEMA, "propertyTables": [table]}},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "buildings"}],
        "meshes": [{"primitives": [primitive]}],
        "materials": [{"name": "white model", "pbrMetallicRoughness": {
            "baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0, "roughnessFactor": 0.9}}],
        "accessors": accessors,
        "bufferViews": buf.views,
        "buffers": [{"byteLength": 0}],
    }
    binary = buf.data()
    gltf["buffers"][0]["byteLength"] = len(binary)
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(text), b"JSON") + text
            + struct.pack("<I4s", len(binary), b"BIN\0") + binary)

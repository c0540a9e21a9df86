"""glTF 2.0 binary (.glb) of a white-model mesh: indexed, quantized (KHR_mesh_quantization), shaded by a palette.

Per vertex: position as three int16 (the node's scale and translation bring them back to metres, 1/65534 of
the content's extent: a few centimetres for a tile of a few kilometres) and the building's feature id as
uint16 (EXT_mesh_features) -- 12 bytes, and a corner is stored once for the roof and both walls that meet
there (a box is 8 vertices). There are no normals: the faces are drawn unlit (KHR_materials_unlit) in their
palette colour darkened by which way they face (roofs brightest, walls by compass quarter, lit from the
south-west), one primitive per colour and facing. A white model reads as clearly that way as lit, at a third
of the bytes. Buildings carry their properties in an EXT_structural_metadata table; a content without
buildings (the coarse blocks of an overview level) carries none.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from tiles.extrude import PALETTE, Mesh, enu_frame

ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
UNSIGNED_SHORT, SHORT, UNSIGNED_INT = 5123, 5122, 5125
Q = 32767  # int16 positions span -Q..Q
# How bright a face is drawn: roofs, then walls facing north, east, south and west (light from the south-west).
FACINGS = (("roof", 1.0), ("north", 0.5), ("east", 0.64), ("south", 0.86), ("west", 0.74))
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
    """One binary buffer assembled from 4-byte-aligned buffer views."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.views: list[dict] = []
        self.size = 0

    def view(self, data: bytes, target: int | None = None, stride: int | None = None) -> int:
        pad = (-self.size) % 4
        if pad:
            self.chunks.append(b"\0" * pad)
            self.size += pad
        view = {"buffer": 0, "byteOffset": self.size, "byteLength": len(data)}
        if stride is not None:
            view["byteStride"] = stride
        if target is not None:
            view["target"] = target
        self.chunks.append(data)
        self.size += len(data)
        self.views.append(view)
        return len(self.views) - 1

    def data(self) -> bytes:
        blob = b"".join(self.chunks)
        return blob + b"\0" * ((-len(blob)) % 4)


def _padded(array: np.ndarray, width: int, dtype: str) -> bytes:
    """Rows of `width` values, each row padded with zeros to a multiple of four bytes (vertex alignment)."""
    itemsize = np.dtype(dtype).itemsize
    stride = -(-width * itemsize // 4) * 4
    out = np.zeros((len(array), stride // itemsize), dtype=dtype)
    out[:, :width] = np.asarray(array, dtype=dtype).reshape(len(array), width)
    return out.tobytes()


def _strings(buf: _Buffer, values: list[str]) -> dict:
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype("uint32")
    return {"values": buf.view(b"".join(encoded)), "stringOffsets": buf.view(offsets.tobytes()),
            "stringOffsetType": "UINT32"}


def _property_table(buf: _Buffer, mesh: Mesh) -> dict:
    b = mesh.buildings
    bits = np.packbits(np.array([x.is_key for x in b], dtype=bool), bitorder="little")
    properties = {
        "id": {"values": buf.view(np.array([x.id for x in b], dtype="uint32").tobytes())},
        "height": {"values": buf.view(np.array([x.height for x in b], dtype="float32").tobytes())},
        "floors": {"values": buf.view(np.array([x.floors for x in b], dtype="uint16").tobytes())},
        "is_key": {"values": buf.view(bits.tobytes())},
    }
    for name in ("use", "township_code", "name"):
        values = [getattr(x, name) for x in b]
        # A column of empty strings would need an empty buffer view, which glTF forbids: an optional
        # property may be left out of the table instead, and readers take it as absent.
        if any(values):
            properties[name] = _strings(buf, values)
    return {"class": "building", "count": len(b), "properties": properties}


def _index(mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Quantized unique vertices, the triangles' indices into them, and the quantization's offset and step."""
    yup = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype="float64")  # east-north-up to glTF's y-up
    positions = mesh.positions.astype("float64") @ yup.T
    low, high = positions.min(axis=0), positions.max(axis=0)
    step = np.maximum((high - low) / (2 * Q), 1e-6)
    offset = low + Q * step
    keys = np.zeros(len(positions), dtype=[("p", "i2", 3), ("f", "u2")])
    keys["p"] = np.clip(np.rint((positions - offset) / step), -Q, Q)
    keys["f"] = mesh.feature_ids
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique["p"], unique["f"], inverse.reshape(-1, 3), offset, step


def _placement(lon0: float, lat0: float, offset: np.ndarray, step: np.ndarray) -> list[float]:
    """The node matrix (column-major) taking quantized y-up positions to earth-centred coordinates.

    3D Tiles turns glTF's y-up into z-up (the inverse of `to_yup`) before a tile's transform; the tiles have
    none, so each content places itself: y-up -> east-north-up -> ECEF, after undoing the quantization.
    """
    to_yup = np.eye(4)
    to_yup[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]
    origin, rot = enu_frame(lon0, lat0)
    enu_to_ecef = np.eye(4)
    enu_to_ecef[:3, :3], enu_to_ecef[:3, 3] = rot.T, origin
    dequantize = np.diag([*step, 1.0])
    dequantize[:3, 3] = offset
    matrix = to_yup @ enu_to_ecef @ to_yup.T @ dequantize
    return [float(v) for v in matrix.T.ravel()]


def _facing(mesh: Mesh) -> np.ndarray:
    """Each triangle's index into FACINGS: roof when it faces up, else the compass quarter its wall faces."""
    normal = mesh.normals[::3]
    quarter = np.rint(np.degrees(np.arctan2(normal[:, 0], normal[:, 1])) / 90) % 4  # 0 north, 1 east, ...
    return np.where(normal[:, 2] > 0.5, 0, 1 + quarter).astype(int)


def to_glb(mesh: Mesh, features: bool = True) -> bytes:
    """The mesh (in the east-north-up frame at its origin) as a glb placed on the earth; a primitive per shade.

    `features`: carry each building's feature id and properties (EXT_mesh_features, EXT_structural_metadata);
    off for the merged blocks of an overview level, which are no building in particular.
    """
    features = features and bool(mesh.buildings)
    buf = _Buffer()
    accessors: list[dict] = []

    def accessor(view: int, component: int, count: int, kind: str, **extra) -> int:
        accessors.append({"bufferView": view, "componentType": component, "count": count, "type": kind, **extra})
        return len(accessors) - 1

    gltf: dict = {"asset": {"version": "2.0", "generator": "onemap white model"}, "scene": 0,
                  "scenes": [{"nodes": [0]}], "accessors": accessors}
    primitives, materials = [], []
    used = ["KHR_mesh_quantization", "KHR_materials_unlit"]
    if mesh.triangle_count:
        qpos, fid, triangles, offset, step = _index(mesh)
        n = len(qpos)
        attributes = {"POSITION": accessor(buf.view(_padded(qpos, 3, "int16"), ARRAY_BUFFER, 8), SHORT, n, "VEC3",
                                           min=qpos.min(axis=0).tolist(), max=qpos.max(axis=0).tolist())}
        if features:
            attributes["_FEATURE_ID_0"] = accessor(buf.view(_padded(fid, 1, "uint16"), ARRAY_BUFFER, 4),
                                                   UNSIGNED_SHORT, n, "SCALAR")
        kind = "uint16" if n < 65535 else "uint32"
        group = mesh.colour_index[::3].astype(int) * len(FACINGS) + _facing(mesh)
        for key in np.unique(group):
            chosen = triangles[group == key].ravel().astype(kind)
            primitive = {"attributes": attributes, "material": len(materials), "mode": 4,
                         "indices": accessor(buf.view(chosen.tobytes(), ELEMENT_ARRAY_BUFFER),
                                             UNSIGNED_SHORT if kind == "uint16" else UNSIGNED_INT,
                                             len(chosen), "SCALAR")}
            if features:
                primitive["extensions"] = {"EXT_mesh_features": {"featureIds": [
                    {"featureCount": len(mesh.buildings), "attribute": 0, "propertyTable": 0}]}}
            primitives.append(primitive)
            (name, rgb), (facing, shade) = PALETTE[key // len(FACINGS)], FACINGS[key % len(FACINGS)]
            materials.append({"name": f"{name} {facing}", "extensions": {"KHR_materials_unlit": {}},
                              "pbrMetallicRoughness": {"baseColorFactor": [*(c * shade for c in rgb), 1.0],
                                                       "metallicFactor": 0.0, "roughnessFactor": 1.0}})
        gltf["nodes"] = [{"mesh": 0, "name": "buildings", "matrix": _placement(*mesh.origin, offset, step)}]
        gltf["meshes"] = [{"primitives": primitives}]
        gltf["materials"] = materials
    else:
        gltf["nodes"] = [{"name": "buildings"}]
    if features:
        used += ["EXT_mesh_features", "EXT_structural_metadata"]
        gltf["extensions"] = {"EXT_structural_metadata": {"schema": SCHEMA,
                                                          "propertyTables": [_property_table(buf, mesh)]}}
    gltf["extensionsUsed"] = used
    gltf["extensionsRequired"] = ["KHR_mesh_quantization"]
    gltf["bufferViews"] = buf.views
    binary = buf.data()
    gltf["buffers"] = [{"byteLength": len(binary)}]
    if not accessors:
        del gltf["accessors"]
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(text), b"JSON") + text
            + struct.pack("<I4s", len(binary), b"BIN\0") + binary)

"""Layer declarations: the one place a layer's shape is stated. Collections, tiles, styles derive from it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from geoserver.access import ROLES
from geoserver.errors import BadInput, NotFound

# `binary` is for domain tables only (bytes of attachments), never a layer property.
PropertyType = Literal["string", "integer", "number", "boolean", "datetime", "date", "json", "binary"]
GeometryType = Literal["Point", "LineString", "Polygon", "MultiPolygon", "MultiLineString", "MultiPoint"]
StyleKind = Literal["fill", "line", "circle", "fill-extrusion"]

TOWNSHIP_KEY = "township_code"
GRID_KEY = "grid_code"


@dataclass(frozen=True)
class Property:
    """One typed attribute of a layer."""

    name: str
    type: PropertyType
    title: str = ""
    required: bool = False
    enum: tuple[str, ...] | None = None
    # Below this zoom the property is trimmed from vector tiles (the style does not need it there).
    tile_min_zoom: int | None = None
    # Shown in tiles at all? Long free text never is.
    in_tiles: bool = True
    # Owned by a workflow: how the property changes instead of a feature write, e.g. "the dispatch actions
    # (POST /events/{id}/actions/{action})". A create through the API starts it at `initial`; a replace or
    # update that would change it is refused (layers/rules.py). None: clients write it freely.
    set_by: str | None = None
    initial: str | int | float | bool | None = None


@dataclass(frozen=True)
class Style:
    """The default look of a layer, from which the MapLibre style is derived."""

    kind: StyleKind
    color: str
    outline: str | None = None
    width: float = 1.0
    radius: float = 4.0
    opacity: float = 0.8
    # For "fill-extrusion": which property holds the height in metres.
    height_property: str | None = None
    # Optional per-value colours: (property, {value: colour}).
    match: tuple[str, tuple[tuple[str, str], ...]] | None = None
    # A map label: the property drawn as text (falling back to `name`), from which zoom, and optionally only
    # for features whose property equals a value, e.g. ("is_key", True).
    label: str | None = None
    label_min_zoom: int = 0
    label_where: tuple[str, str | int | bool] | None = None


@dataclass(frozen=True)
class Layer:
    """One declared layer: what it is, what it holds, how it is keyed, drawn and guarded."""

    id: str
    title: str
    geometry_type: GeometryType
    properties: tuple[Property, ...]
    description: str = ""
    # The permission key: every feature carries township_code; grid_code where has_grid is set.
    has_grid: bool = True
    # Set township/grid from the geometry by spatial join on load and create (False for the admin areas
    # themselves, which carry their own codes).
    locate_on_write: bool = True
    time_field: str | None = None
    time_end_field: str | None = None
    min_zoom: int = 0
    max_zoom: int = 22
    style: Style | None = None
    public: bool = False
    # Roles that may write (create, replace, update, delete) this layer through the API besides admins, each
    # as far as its role's grants reach (geoserver/access.py). Empty: only admins write it (bulk loads always).
    writers: tuple[str, ...] = ()
    # Departments whose thematic layer this is (they read it in the townships they serve).
    departments: tuple[str, ...] = ()
    # Live layers change often: short cache lifetimes, tile invalidation on write.
    live: bool = False
    keywords: tuple[str, ...] = field(default_factory=tuple)
    # What a cluster of this point layer counts besides point_count: (name, property, values), e.g. how many
    # of the events in it are open, or overdue -- so a clustered map still tells open from closed.
    cluster_counts: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    # Owned by a workflow like Property.set_by: how the geometry moves instead of a PUT or PATCH (an event's
    # point moves by its relocate action, which routes it again and writes its timeline). None: clients move it.
    geometry_set_by: str | None = None
    # Heat-mapped: the store keeps each feature's H3 cells (resolutions 0-15) in a column of its own
    # (geoserver/store/h3cells.py), so counts by hexagon are one GROUP BY.
    h3_cells: bool = False
    # Tiled often and written rarely: PostGIS keeps a generated Web Mercator copy of the geometry (column
    # geom_3857) that WebMercatorQuad tiles read instead of transforming every row of every tile (for points
    # the transform was half of a tile's SQL time). Not for layers taking a stream of writes (GPS fixes).
    mercator_copy: bool = False

    @property
    def editable(self) -> bool:
        """True if some role besides admins writes the layer through the API."""
        return bool(self.writers)

    @property
    def property_names(self) -> tuple[str, ...]:
        """All attribute names, key columns included, in declaration order."""
        return tuple(p.name for p in self.properties)

    def prop(self, name: str) -> Property:
        """The declared property `name`, or BadInput naming it."""
        for p in self.properties:
            if p.name == name:
                return p
        raise BadInput(
            f"unknown property {name!r} of layer {self.id!r}; known: {', '.join(self.property_names)}",
            parameter=name,
        )

    def has_prop(self, name: str) -> bool:
        """True if `name` is a declared property."""
        return any(p.name == name for p in self.properties)


@dataclass(frozen=True)
class Table:
    """A domain table that is not a map layer (an event's timeline, event types, grid bindings, ...).

    Declared once like a layer; both stores hold it (PostGIS by a versioned SQL migration, the GeoPackage by a
    numbered step, both checked against this declaration). Every row has an integer `id`; columns are typed
    like layer properties, plus `json` for lists and small documents.
    """

    id: str
    title: str
    columns: tuple[Property, ...]
    description: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        """Every column name, `id` first."""
        return ("id", *(c.name for c in self.columns))

    def column(self, name: str) -> Property:
        """The declared column `name`, or BadInput naming it."""
        for c in self.columns:
            if c.name == name:
                return c
        if name == "id":
            return Property("id", "integer")
        raise BadInput(f"unknown column {name!r} of {self.id!r}", parameter=name)


class Catalog:
    """The set of declared layers, by id, in declaration order."""

    def __init__(self, layers: Iterable[Layer], tables: Iterable[Table] = ()) -> None:
        self._layers: dict[str, Layer] = {}
        self._tables: dict[str, Table] = {t.id: t for t in tables}
        for layer in layers:
            if layer.id in self._layers:
                raise ValueError(f"layer {layer.id!r} declared twice")
            names = layer.property_names
            if TOWNSHIP_KEY not in names:
                raise ValueError(f"layer {layer.id!r} lacks the permission key {TOWNSHIP_KEY!r}")
            if layer.has_grid and GRID_KEY not in names:
                raise ValueError(f"layer {layer.id!r} has_grid but no {GRID_KEY!r} property")
            unknown = [r for r in layer.writers if r not in ROLES]
            if unknown:
                raise ValueError(f"layer {layer.id!r}: writers {unknown} are not roles ({', '.join(ROLES)})")
            for p in layer.properties:
                if p.initial is not None and (p.set_by is None or (p.enum and p.initial not in p.enum)):
                    raise ValueError(f"layer {layer.id!r}: initial {p.initial!r} of {p.name!r} needs a set_by "
                                     f"and a value of the property")
            if any(p.type == "binary" for p in layer.properties):
                raise ValueError(f"layer {layer.id!r}: binary properties belong in a domain table, not a layer")
            for f in (layer.time_field, layer.time_end_field):
                if f and f not in names:
                    raise ValueError(f"layer {layer.id!r}: time field {f!r} is not a property")
            self._layers[layer.id] = layer

    def __iter__(self) -> Iterator[Layer]:
        return iter(self._layers.values())

    def __len__(self) -> int:
        return len(self._layers)

    def __contains__(self, layer_id: object) -> bool:
        return layer_id in self._layers

    def get(self, layer_id: str) -> Layer:
        """The layer `layer_id`, or NotFound naming it."""
        try:
            return self._layers[layer_id]
        except KeyError:
            raise NotFound(f"no collection {layer_id!r}", parameter="collectionId") from None

    @property
    def ids(self) -> tuple[str, ...]:
        """Layer ids in declaration order."""
        return tuple(self._layers)

    @property
    def tables(self) -> tuple[Table, ...]:
        """The domain tables, in declaration order."""
        return tuple(self._tables.values())

    def table(self, table_id: str) -> Table:
        """The domain table `table_id` (a programming error if it is not declared)."""
        return self._tables[table_id]

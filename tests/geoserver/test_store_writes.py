"""The Store contract, writes: all or nothing, keyed by spatial join, guarded by scope and ETag, in both stores."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from geoserver.errors import BadInput, Conflict, Forbidden, NotFound, PreconditionFailed
from geoserver.features import Feature, FeatureQuery
from geoserver.store import ApiKeyRecord, UserRecord, embedded, postgis_load
from tests.geoserver.contract_county import (
    EAST,
    EVENTS,
    EVERYTHING,
    G1,
    G2,
    G3,
    G4,
    L_SHAPE,
    WEST,
    WEST_BOX,
    WEST_ONLY,
    count,
    event_feature,
    ids,
)

# -- writes ------------------------------------------------------------------------------------------------


def test_insert_fills_township_and_grid_by_spatial_join(store):
    stored = store.insert("events", [event_feature(None, 100.66, 32.87, township_code=EAST, grid_code=G4)],
                          EVERYTHING)[0]
    assert stored.id not in EVENTS  # given ids were kept on load; new ones do not collide
    assert (stored.properties["township_code"], stored.properties["grid_code"]) == (WEST, G2)
    assert store.get("events", stored.id, WEST_ONLY).properties["grid_code"] == G2
    outside = store.insert("events", [event_feature(None, 101.5, 33.5)], EVERYTHING)[0]
    assert outside.properties["township_code"] is None and outside.properties["grid_code"] is None


def test_insert_outside_the_callers_townships_is_forbidden_and_writes_nothing(store):
    with pytest.raises(Forbidden):
        store.insert("events", [event_feature(None, 100.61, 32.81), event_feature(None, 100.75, 32.85)], WEST_ONLY)
    assert count(store, "events") == 12
    assert store.insert("events", [event_feature(None, 100.61, 32.81)], WEST_ONLY)[0].properties[
        "township_code"] == WEST


BOWTIE = Polygon([(100.61, 32.81), (100.62, 32.82), (100.62, 32.81), (100.61, 32.82)])


@pytest.mark.parametrize("layer, feature, field", [
    ("buildings", Feature(None, BOWTIE, {"floors": 2}), "geometry"),
    ("buildings", Feature(None, box(100.61, 32.81, 100.611, 32.811), {"floors": "three"}), "floors"),
    ("events", event_feature(None, 100.62, 32.82, colour="red"), "colour"),
    ("events", Feature(None, Point(100.62, 32.82), {"type": "garbage", "reported_at": "2024-03-01T00:00:00Z"}),
     "title"),
    ("events", event_feature(None, 100.62, 32.82, priority="meteoric"), "priority"),
    ("events", event_feature(None, 200.0, 32.82), "geometry"),
    ("events", Feature(None, LineString([(100.61, 32.81), (100.62, 32.82)]), {"title": "x", "type": "other",
                                                                            "reported_at": "2024-03-01"}), "geometry"),
])
def test_bad_input_names_the_field_and_writes_nothing(store, layer, feature, field):
    before = count(store, layer)
    with pytest.raises(BadInput) as err:
        store.insert(layer, [feature], EVERYTHING)
    assert err.value.parameter == field
    assert field in str(err.value) or field == "geometry"
    assert count(store, layer) == before


def test_a_batch_whose_third_feature_is_bad_writes_nothing(store):
    batch = [event_feature(None, 100.61, 32.81), event_feature(None, 100.62, 32.81),
             event_feature(None, 100.63, 32.81, reported_at="yesterday")]
    with pytest.raises(BadInput) as err:
        store.insert("events", batch, EVERYTHING)
    assert err.value.parameter == "reported_at" and re.search(r"\b2\b", str(err.value))
    assert count(store, "events") == 12
    with pytest.raises(BadInput) as err:
        store.bulk_load("events", batch)
    assert err.value.parameter == "reported_at" and re.search(r"\b2\b", str(err.value))
    assert count(store, "events") == 12


def test_bulk_load_keeps_given_ids_and_replace_empties_first(store):
    assert store.bulk_load("temples", [Feature(40, Point(100.61, 32.81), {"name": "Forty"}),
                                       Feature(41, Point(100.71, 32.81), {"name": "Forty-one"})]) == 2
    assert ids(store, "temples") == [40, 41]
    assert store.get("temples", 41, EVERYTHING).properties["township_code"] == EAST
    assert store.insert("temples", [Feature(None, Point(100.62, 32.82), {"name": "New"})], EVERYTHING)[0].id == 42
    assert store.bulk_load("temples", [Feature(7, Point(100.61, 32.81), {"name": "Seven"})], replace=True) == 1
    assert ids(store, "temples") == [7]


def test_bulk_load_of_an_id_already_taken_is_a_conflict_and_writes_nothing(store):
    with pytest.raises(Conflict, match=r"\b5\b"):
        store.bulk_load("events", [event_feature(None, 100.61, 32.81), event_feature(5, 100.62, 32.81)])
    assert count(store, "events") == 12
    # The spatial index still follows every write after a failed load.
    (new,) = store.insert("events", [event_feature(None, 100.611, 32.811)], EVERYTHING)
    assert ids(store, "events", bbox=(100.61, 32.81, 100.612, 32.812)) == [new.id]


def test_bulk_load_keeps_codes_a_feature_carries(store):
    store.bulk_load("pois", [Feature(None, Point(100.61, 32.81), {"name": "Hall", "category": "service_hall",
                                                                   "township_code": EAST, "grid_code": G4})])
    (poi,) = store.query("pois", FeatureQuery(), EVERYTHING).features
    assert (poi.properties["township_code"], poi.properties["grid_code"]) == (EAST, G4)


def test_update_with_the_current_etag_patches_and_a_stale_one_fails(store):
    current = store.get("events", 1, EVERYTHING)
    updated = store.update("events", 1, Feature(None, None, {"status": "accepted"}), EVERYTHING, partial=True,
                           if_match=current.etag())
    assert updated.properties["status"] == "accepted"
    assert updated.properties["title"] == EVENTS[1][6] and updated.geometry.equals(current.geometry)
    assert updated.etag() != current.etag() and store.get("events", 1, EVERYTHING).etag() == updated.etag()
    with pytest.raises(PreconditionFailed):
        store.update("events", 1, Feature(None, None, {"status": "closed"}), EVERYTHING, partial=True,
                     if_match=current.etag())
    assert store.get("events", 1, EVERYTHING).properties["status"] == "accepted"


def test_update_moves_a_feature_and_rekeys_it(store):
    moved = store.update("events", 1, event_feature(None, 100.77, 32.85, title="Moved"), EVERYTHING)
    assert (moved.properties["township_code"], moved.properties["grid_code"]) == (EAST, G4)
    assert moved.properties["status"] is None  # a full replace drops what it does not carry
    assert 1 in ids(store, "events", bbox=(100.76, 32.84, 100.78, 32.86))
    assert 1 not in ids(store, "events", bbox=(100.61, 32.81, 100.63, 32.83))


def test_update_respects_the_scope(store):
    with pytest.raises(NotFound):  # cannot see it, so cannot touch it
        store.update("events", 5, Feature(None, None, {"status": "closed"}), WEST_ONLY, partial=True)
    with pytest.raises(Forbidden):  # may not move it out of the townships it may edit
        store.update("events", 1, Feature(None, Point(100.77, 32.85), {}), WEST_ONLY, partial=True)
    assert store.get("events", 1, EVERYTHING).properties["township_code"] == WEST
    assert store.get("events", 5, EVERYTHING).properties["status"] == "in_progress"


def test_a_partial_move_re_keys_and_the_scope_guards_the_destination(store):
    f = store.insert("events", [event_feature(None, 100.62, 32.82)], WEST_ONLY)[0]
    assert (f.properties["township_code"], f.properties["grid_code"]) == (WEST, G1)
    with pytest.raises(Forbidden):
        store.update("events", f.id, Feature(None, Point(100.77, 32.85), {}), WEST_ONLY, partial=True)
    assert store.get("events", f.id, EVERYTHING) == f  # not moved, not re-keyed
    moved = store.update("events", f.id, Feature(None, Point(100.77, 32.85), {}), EVERYTHING, partial=True)
    assert (moved.properties["township_code"], moved.properties["grid_code"]) == (EAST, G4)
    assert moved.properties["title"] == f.properties["title"]  # a partial move keeps the rest
    back = store.update("events", f.id, Feature(None, Point(100.67, 32.82), {}), EVERYTHING, partial=True)
    assert (back.properties["township_code"], back.properties["grid_code"]) == (WEST, G2)


def test_update_with_bad_input_changes_nothing(store):
    before = store.get("events", 1, EVERYTHING)
    with pytest.raises(BadInput) as err:
        store.update("events", 1, Feature(None, Point(100.62, 32.82), {"title": "no type"}), EVERYTHING)
    assert err.value.parameter in ("type", "reported_at")
    assert store.get("events", 1, EVERYTHING) == before


def test_concurrent_updates_with_one_etag_let_exactly_one_win(store):
    etag = store.get("events", 1, EVERYTHING).etag()
    outcomes: dict[str, str] = {}

    def worker(i: int) -> None:
        try:
            store.update("events", 1, Feature(None, None, {"assignee": f"w{i}"}), EVERYTHING, partial=True,
                         if_match=etag)
            outcomes[f"w{i}"] = "ok"
        except PreconditionFailed:
            outcomes[f"w{i}"] = "stale"

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes.values()) == ["ok"] + ["stale"] * 5
    winner = next(name for name, outcome in outcomes.items() if outcome == "ok")
    assert store.get("events", 1, EVERYTHING).properties["assignee"] == winner


def test_delete_removes_and_respects_scope_and_etag(store):
    store.delete("events", 3, EVERYTHING)
    with pytest.raises(NotFound):
        store.get("events", 3, EVERYTHING)
    with pytest.raises(NotFound):
        store.delete("events", 3, EVERYTHING)
    with pytest.raises(NotFound):
        store.delete("events", 5, WEST_ONLY)
    with pytest.raises(PreconditionFailed):
        store.delete("events", 5, EVERYTHING, if_match='"stale"')
    assert count(store, "events") == 11 and store.get("events", 5, EVERYTHING).id == 5
    assert 3 not in ids(store, "events", bbox=WEST_BOX)


# -- where a feature is keyed -------------------------------------------------------------------------------

# An L-shaped building mostly east of the township border (100.70) by area: its centroid lies east and outside
# it, its point on surface inside it, in the west (grid G2).
ELL = Polygon([(100.690, 32.810), (100.730, 32.810), (100.730, 32.812), (100.692, 32.812), (100.692, 32.850),
               (100.690, 32.850)])
# A track from the east into the west, longer in the west: keyed where it starts.
WESTWARD = LineString([(100.78, 32.85), (100.60, 32.85)])


def test_areas_are_keyed_by_an_inner_point_and_lines_by_their_first_vertex_on_every_write_path(store):
    assert shapely.centroid(ELL).x > 100.70 and not ELL.contains(shapely.centroid(ELL))
    assert shapely.point_on_surface(ELL).x < 100.70
    inserted = store.insert("buildings", [Feature(None, ELL, {"floors": 2})], EVERYTHING)[0]
    assert store.bulk_load("buildings", [Feature(50, ELL, {"floors": 3})]) == 1
    for building in (inserted, store.get("buildings", 50, EVERYTHING)):
        assert (building.properties["township_code"], building.properties["grid_code"]) == (WEST, G2)
    patrol = {"worker": "w", "started_at": "2026-05-01T08:00:00Z"}
    inserted = store.insert("patrols", [Feature(None, WESTWARD, patrol)], EVERYTHING)[0]
    assert store.bulk_load("patrols", [Feature(50, WESTWARD, patrol)]) == 1
    for track in (inserted, store.get("patrols", 50, EVERYTHING)):
        assert (track.properties["township_code"], track.properties["grid_code"]) == (EAST, G4)


@pytest.mark.parametrize(("lon", "lat", "township", "grid"), [
    (100.70, 32.85, WEST, G2),  # on the border of the two townships (and of grids G2 and G3)
    (100.65, 32.85, WEST, G1),  # on the border of two grids of one township
    (100.70, 32.90, WEST, G2),  # on the corner where both townships meet the county's edge
])
def test_a_point_on_a_shared_border_goes_to_the_smaller_code_on_every_path(store, lon, lat, township, grid):
    where = store.locate(lon, lat)
    assert (where.township_code, where.grid_code) == (township, grid)
    assert store.bulk_load("events", [event_feature(100, lon, lat)]) == 1
    inserted = store.insert("events", [event_feature(None, lon, lat)], EVERYTHING)[0]
    for event in (store.get("events", 100, EVERYTHING), inserted):
        assert (event.properties["township_code"], event.properties["grid_code"]) == (township, grid)


# -- bulk loads in chunks ------------------------------------------------------------------------------------


@pytest.fixture
def small_chunks(monkeypatch):
    """Both stores load in chunks of 1,000 features, so a few thousand cross chunk boundaries."""
    monkeypatch.setattr(embedded, "CHUNK", 1000)
    monkeypatch.setattr(postgis_load, "CHUNK_ROWS", 1000)


def test_a_streamed_load_keeps_given_ids_and_numbers_the_rest_after_them(empty_store, small_chunks):
    def stream():  # ids 1..2500 given, then none: the third chunk mixes both
        for i in range(5500):
            yield event_feature(i + 1 if i < 2500 else None, 100.62, 32.82, title=f"e{i}")

    assert empty_store.bulk_load("events", stream()) == 5500
    got = {f.properties["title"]: f.id for f in empty_store.iter_features("events", EVERYTHING)}
    assert all(got[f"e{i}"] == i + 1 for i in range(2500))
    assert len(set(got.values())) == 5500 and min(got[f"e{i}"] for i in range(2500, 5500)) > 2500


def test_a_feature_without_an_id_never_takes_one_given_later_in_the_load(empty_store):
    loaded = [event_feature(None, 100.62, 32.82, title="first"), event_feature(1, 100.62, 32.82, title="second")]
    assert empty_store.bulk_load("events", loaded) == 2
    got = {f.properties["title"]: f.id for f in empty_store.iter_features("events", EVERYTHING)}
    assert got["second"] == 1 and got["first"] > 1


def test_a_duplicate_id_within_one_load_is_a_conflict_naming_it_and_nothing_is_written(empty_store):
    with pytest.raises(Conflict, match=r"\b7\b"):
        empty_store.bulk_load("events", [event_feature(7, 100.62, 32.82), event_feature(8, 100.62, 32.82),
                                         event_feature(7, 100.62, 32.82)])
    assert count(empty_store, "events") == 0


def test_a_bad_row_deep_in_a_stream_is_named_and_nothing_is_written(empty_store, small_chunks):
    good = [event_feature(None, 100.62, 32.82, title=f"e{i}") for i in range(4321)]
    bad = event_feature(None, 100.62, 32.82, priority="whenever")
    with pytest.raises(BadInput) as err:
        empty_store.bulk_load("events", [*good, bad, *good])
    assert err.value.parameter == "priority"
    assert str(err.value).startswith("row 4321:") and "whenever" in str(err.value)
    assert count(empty_store, "events") == 0


def test_a_failed_replace_keeps_the_layer_and_a_replace_numbers_from_one(store):
    with pytest.raises(BadInput):
        store.bulk_load("events", [event_feature(None, 100.62, 32.82), event_feature(None, 100.62, 32.82,
                                                                                     priority="volcanic")], replace=True)
    assert ids(store, "events") == sorted(EVENTS)  # the failed replace left the old layer
    assert store.bulk_load("events", [event_feature(None, 100.72, 32.82, title="new")], replace=True) == 1
    (new,) = store.query("events", FeatureQuery(), EVERYTHING).features
    assert (new.id, new.properties["title"]) == (1, "new")
    assert (new.properties["township_code"], new.properties["grid_code"]) == (EAST, G3)
    assert store.insert("events", [event_feature(None, 100.62, 32.82)], EVERYTHING)[0].id == 2


def test_text_comes_back_exactly_as_it_went_in_on_every_write_path(store):
    worker = "网格员-7\t'\"\\ \n\r%_;--"
    point = {"patrol_id": 1, "worker": worker, "recorded_at": "2026-04-01T00:00:00.123Z"}
    assert store.bulk_load("track_points", [Feature(70, Point(100.62, 32.82), point)]) == 1
    inserted = store.insert("track_points", [Feature(None, Point(100.62, 32.82), point)], EVERYTHING)[0]
    for fid in (70, inserted.id):
        assert store.get("track_points", fid, EVERYTHING).properties["worker"] == worker


# -- accounts and health -----------------------------------------------------------------------------------


def test_users_and_api_keys_round_trip(store):
    leader = UserRecord(f"leader-{WEST}", "leader", "pbkdf2$x", "Leader West", (WEST,), (G1, G2), None,
                        {"phone": "0975-123", "languages": ["bo", "zh"]})
    store.put_users([leader, UserRecord("dept-ecology", "department", "pbkdf2$y", department="ecology")])
    assert store.get_user(f"leader-{WEST}") == leader
    assert store.get_user("dept-ecology").department == "ecology"
    assert store.get_user("nobody") is None
    store.put_users([UserRecord(f"leader-{WEST}", "leader", "pbkdf2$z", "Leader West", (WEST, EAST))])
    assert store.get_user(f"leader-{WEST}").townships == (WEST, EAST)
    key = ApiKeyRecord("sha256:abc", f"leader-{WEST}", "field tablet")
    store.put_api_key(key)
    assert store.get_api_key("sha256:abc") == key
    assert store.get_api_key("sha256:nope") is None
    with pytest.raises(NotFound):
        store.put_api_key(ApiKeyRecord("sha256:def", "nobody"))


def test_health_names_the_store(store):
    assert store.health()["store"] == store.kind


def test_initialize_twice_keeps_the_data(store):
    store.initialize()
    assert count(store, "events") == 12
    assert shapely.equals(store.get("buildings", 3, EVERYTHING).geometry, L_SHAPE)


def test_an_append_skips_stored_keys_and_stored_keys_names_them_within_their_patrol(store):
    def fix(patrol, key, lon=100.62):
        return Feature(None, Point(lon, 32.82), {"patrol_id": patrol, "worker": "w", "point_key": key,
                                                 "recorded_at": datetime(2024, 3, 1, 8, tzinfo=UTC)})

    assert store.stored_keys("track_points", "point_key", ["k0"], ("patrol_id", 7)) == set()
    first = store.append("track_points", [fix(7, "k0"), fix(7, "k1"), fix(8, "k2")], EVERYTHING,
                         unique=("patrol_id", "point_key"))
    assert [store.get("track_points", fid, EVERYTHING).properties["point_key"] for fid in first] == ["k0", "k1", "k2"]
    keys = ["k0", "k1", "k2", "k'3", "k0"]
    assert store.stored_keys("track_points", "point_key", keys, ("patrol_id", 7)) == {"k0", "k1"}
    assert store.stored_keys("track_points", "point_key", keys, ("patrol_id", 8)) == {"k2"}
    assert store.stored_keys("track_points", "point_key", [], ("patrol_id", 7)) == set()
    again = store.append("track_points", [fix(7, "k1"), fix(7, "k'3", 100.72), fix(7, "k'3")], EVERYTHING,
                         unique=("patrol_id", "point_key"))
    assert again[0] is None and again[2] is None
    assert store.get("track_points", again[1], EVERYTHING).geometry.x == 100.72
    assert store.stored_keys("track_points", "point_key", keys, ("patrol_id", 7)) == {"k0", "k1", "k'3"}


@pytest.mark.parametrize("grid", [G2, G3, "no-such-grid", None])
def test_an_append_hinted_with_a_grid_keys_every_point_as_without_the_hint(store, grid):
    """Inside the hinted grid, on its borders (shared with a smaller code, or a township's) and outside it."""
    spots = [(100.66, 32.85), (100.69, 32.81), (100.65, 32.85), (100.70, 32.85), (100.70, 32.90), (100.72, 32.83),
             (100.79, 32.89), (101.5, 33.5)]

    def fixes(patrol):
        return [Feature(None, Point(lon, lat), {"patrol_id": patrol, "worker": "w", "point_key": f"k{i}",
                                                "recorded_at": datetime(2024, 3, 1, 8, tzinfo=UTC)})
                for i, (lon, lat) in enumerate(spots)]

    assert all(store.append("track_points", fixes(1), EVERYTHING, unique=("patrol_id", "point_key")))
    assert all(store.append("track_points", fixes(2), EVERYTHING, unique=("patrol_id", "point_key"), grid=grid))
    keyed = {}
    for f in store.query("track_points", FeatureQuery(limit=100), EVERYTHING).features:
        keyed.setdefault(f.properties["patrol_id"], {})[f.properties["point_key"]] = (
            f.properties["township_code"], f.properties["grid_code"])
    assert keyed[2] == keyed[1]
    assert keyed[1]["k0"] == (WEST, G2) and keyed[1]["k3"] == (WEST, G2) and keyed[1]["k2"] == (WEST, G1)
    assert keyed[1]["k7"] == (None, None)


def test_patch_line_extends_a_line_in_place_only_when_its_end_is_what_the_caller_read(store):
    """A patrol's track grows without the caller reading it: the last vertex replaced by the new ones (repeated
    vertices kept, also where old and new meet), its properties patched, one update change with both boxes;
    a stale end (or a two-vertex line) behaves the same on both stores."""
    start = store.change_bounds()[1]
    line = LineString([(100.78, 32.85), (100.75, 32.85), (100.74, 32.86)])
    pid = store.insert("patrols", [Feature(None, line, {"worker": "w", "started_at": "2026-05-01T08:00:00Z"})],
                       EVERYTHING)[0].id
    new = [(100.75, 32.85), (100.75, 32.85), (100.62, 32.89)]  # starts where the kept line ends, then twice
    stale = ((100.75, 32.85), (100.70, 32.86))
    assert store.patch_line("patrols", pid, {"point_count": 9}, last=stale, coords=new) is None
    assert store.get("patrols", pid, EVERYTHING).geometry.equals_exact(line, 0)
    got = store.patch_line("patrols", pid, {"point_count": 5}, last=((100.75, 32.85), (100.74, 32.86)), coords=new)
    assert got.geometry is None and got.properties["point_count"] == 5
    stored = store.get("patrols", pid, EVERYTHING)
    assert list(stored.geometry.coords) == [(100.78, 32.85), (100.75, 32.85), *new]
    assert (stored.properties["point_count"], stored.properties["township_code"]) == (5, EAST)  # first vertex
    assert store.get("patrols", pid, EVERYTHING, with_geometry=False).geometry is None
    change = store.changes_since(start, 100)[-1]
    assert (change.op, change.fid, change.township_after) == ("update", pid, EAST)
    assert change.before == pytest.approx((100.74, 32.85, 100.78, 32.86))
    assert change.after == pytest.approx((100.62, 32.85, 100.78, 32.89))
    # Properties alone: the line stays.
    assert store.patch_line("patrols", pid, {"point_count": 6}).properties["point_count"] == 6
    assert list(store.get("patrols", pid, EVERYTHING).geometry.coords)[-1] == (100.62, 32.89)
    two = store.insert("patrols", [Feature(None, LineString([(100.78, 32.85), (100.77, 32.85)]),
                                           {"worker": "w", "started_at": "2026-05-01T08:00:00Z"})], EVERYTHING)[0].id
    store.patch_line("patrols", two, {}, last=((100.78, 32.85), (100.77, 32.85)), coords=[(100.76, 32.85)])
    assert list(store.get("patrols", two, EVERYTHING).geometry.coords) == [(100.78, 32.85), (100.76, 32.85)]


def test_a_fresh_append_inside_its_grid_gives_what_the_usual_one_gives_and_still_skips_a_stored_key(store):
    """`fresh` (the caller found no key stored: PostGIS COPYs straight into the table) keys the points as
    without it, and a key stored after all is skipped, not an error."""
    def fix(key, lon, lat=32.85):
        return Feature(None, Point(lon, lat), {"patrol_id": 9, "worker": "w", "point_key": key,
                                               "recorded_at": datetime(2024, 3, 1, 8, tzinfo=UTC)})

    where = store.locate(100.66, 32.85)
    inside = [fix(f"a{i}", 100.66 + i * 1e-4) for i in range(5)]
    ids = store.append("track_points", inside, EVERYTHING, unique=("patrol_id", "point_key"), grid=where.grid_code,
                       fresh=True)
    assert all(ids) and len(set(ids)) == 5
    got = {f.properties["point_key"]: f for f in store.query("track_points", FeatureQuery(
        filter={"op": "=", "args": [{"property": "patrol_id"}, 9]}, limit=100), EVERYTHING).features}
    assert sorted(got) == [f"a{i}" for i in range(5)]
    assert {(f.properties["township_code"], f.properties["grid_code"]) for f in got.values()} == {
        (where.township_code, where.grid_code)}
    assert {got[f"a{i}"].id for i in range(5)} == set(ids)
    # A key stored after all (the caller was wrong): skipped like any append, the others written.
    again = store.append("track_points", [fix("a1", 100.661), fix("b1", 100.662)], EVERYTHING,
                         unique=("patrol_id", "point_key"), grid=where.grid_code, fresh=True)
    assert again[0] is None and again[1]
    assert store.stored_keys("track_points", "point_key", ["a1", "b1"], ("patrol_id", 9)) == {"a1", "b1"}

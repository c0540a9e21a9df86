"""The white model's size and validity on a sample county, and what Chromium fetches at the county and a town view.

Not a test. Reproduce:

    .venv/bin/python bench/white_model/run.py --database data/sample/county.gpkg --out /tmp/white-model \
        [--validator /path/to/3d-tiles-validator] [--server http://127.0.0.1:8000 --town 100.7402,32.9301,1500]

`--validator`: a built checkout of CesiumGS/3d-tiles-validator (it is not on the npm registry this project
installs from; `git clone`, `npm install --ignore-scripts`, `npx tsc`); it validates the written tileset and
every content. `--server`: a running onemap on the same data (`make run`); bench/white_model/view.mjs then opens
/viewer/white-model.html in Debian's Chromium as admin at the whole-model view and at `--town`.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from geoserver.access import Scope  # noqa: E402
from geoserver.store import open_store  # noqa: E402
from layers.catalog import build_catalog  # noqa: E402
from tiles.extrude import Building  # noqa: E402
from tiles.white_model import build_white_model  # noqa: E402


def write_model(database: str, out: Path) -> dict:
    """Build the whole county's model, write tileset.json and every content; sizes by kind."""
    store = open_store(database, build_catalog())
    buildings = [Building.from_feature(f.id, f.geometry, f.properties)
                 for f in store.iter_features("buildings", Scope.everything()) if f.geometry is not None]
    model = build_white_model(buildings)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tileset.json").write_text(json.dumps(model.tileset))
    sizes: collections.Counter = collections.Counter()
    started = time.perf_counter()
    for kind, paths in (("leaves", model.leaves), ("overviews", model.overviews)):
        for path in paths:
            glb = model.content(path)
            (out / f"{path}.glb").write_bytes(glb)
            sizes[kind] += len(glb)
            sizes[f"{kind}_tiles"] += 1
    root = model.content("0") if "0" in model.overviews else b""
    return {"buildings": len(buildings), "leaf_bytes": sizes["leaves"], "leaf_tiles": sizes["leaves_tiles"],
            "bytes_per_building": round(sizes["leaves"] / max(len(buildings), 1), 1),
            "overview_bytes": sizes["overviews"], "overview_tiles": sizes["overviews_tiles"],
            "root_overview_bytes": len(root), "contents_seconds": round(time.perf_counter() - started, 2)}


def validate(validator: Path, out: Path) -> dict:
    """The official 3D Tiles validator's counts over the written tileset."""
    report = out / "validator-report.json"
    subprocess.run(["node", str(validator / "build" / "main.js"), "--tilesetFile", str(out / "tileset.json"),
                    "--reportFile", str(report)], check=True, capture_output=True, timeout=1800)
    found = json.loads(report.read_text())
    kinds: collections.Counter = collections.Counter()

    def walk(issues: list) -> None:
        for issue in issues:
            if issue["severity"] in ("ERROR", "WARNING"):
                kinds[issue["type"]] += 1
            walk(issue.get("causes", []))

    walk(found.get("issues", []))
    return {"errors": found.get("numErrors"), "warnings": found.get("numWarnings"), "infos": found.get("numInfos"),
            "kinds": dict(kinds)}


def browse(server: str, town: str) -> list[dict]:
    """Content tiles, bytes and seconds to a settled view, at the whole model and at a town."""
    token = httpx.post(f"{server}/auth/token", data={"username": "admin", "password": "onemap"}).json()
    done = subprocess.run(["node", str(ROOT / "bench" / "white_model" / "view.mjs"), server,
                           token["access_token"], "county", f"town={town}"],
                          capture_output=True, text=True, check=True, timeout=1800, cwd=ROOT)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=str(ROOT / "data" / "sample" / "county.gpkg"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "white-model")
    parser.add_argument("--validator", type=Path)
    parser.add_argument("--server")
    parser.add_argument("--town", default="100.7402,32.9301,1500")
    args = parser.parse_args()
    print(json.dumps({"model": write_model(args.database, args.out)}))
    if args.validator:
        print(json.dumps({"validator": validate(args.validator, args.out)}))
    if args.server:
        for view in browse(args.server, args.town):
            print(json.dumps({"chromium": view}))


if __name__ == "__main__":
    main()

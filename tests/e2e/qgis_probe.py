"""Open onemap layers in QGIS through a Basic auth configuration; print what QGIS saw as JSON.

Run by Debian's system Python (/usr/bin/python3, which has python3-qgis), never by the project's venv:
    qgis_probe.py '{"base": "http://127.0.0.1:8000", "username": "…", "password": "…", "home": "/tmp/x",
                    "collection": "events", "wmts": ["imagery", "grids"]}'
`home` is a scratch directory for QGIS's profile, auth database and HTTP cache. With `password` null, no auth
configuration is made (an anonymous QGIS). Prints {"oapif": …, "vector_tiles": …, "wmts": {layer: …}}.
"""

from __future__ import annotations

import json
import os
import sys

ARGS = json.loads(sys.argv[1])
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["QGIS_AUTH_DB_DIR_PATH"] = ARGS["home"]  # QGIS's auth database lives here, not in ~/.local
# Qt keeps QGIS's HTTP disk cache in XDG_CACHE_HOME: a private one, or tiles cached by an earlier run are
# revalidated (304) instead of fetched and the run depends on what ran before.
for xdg in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"):
    os.environ[xdg] = os.path.join(ARGS["home"], xdg.lower())
    os.makedirs(os.environ[xdg], mode=0o700, exist_ok=True)

from qgis.core import (  # noqa: E402  (after the environment QGIS reads at import)
    QgsApplication,
    QgsAuthMethodConfig,
    QgsCoordinateReferenceSystem,
    QgsDataSourceUri,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
    QgsVectorTileBasicRenderer,
    QgsVectorTileBasicRendererStyle,
    QgsVectorTileLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QEventLoop, QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402

WEB_MERCATOR = "EPSG:3857"
# The extent of WebMercatorQuad tile z7/x99/y51, around the whole test county: at 256 px QGIS draws it from the
# z6 tiles that cover it, and every point of the county lies in exactly one of them (no double count).
Z7_TILE = QgsRectangle(10958012.374962866, 3757032.814272983, 11271098.44281895, 4070118.8821290657)


class CountingRenderer(QgsVectorTileBasicRenderer):
    """A vector tile renderer that draws nothing and counts the points QGIS decoded in one tile layer.

    A basic renderer underneath, with a style whose filter names `point_count`, so that QGIS decodes that
    attribute of clustered points (it decodes only the attributes its renderer uses).
    """

    def __init__(self, layer: str, counts: dict | None = None) -> None:
        super().__init__()
        self.layer = layer
        self.counts = {} if counts is None else counts
        style = QgsVectorTileBasicRendererStyle("count", layer, QgsWkbTypes.PointGeometry)
        style.setFilterExpression('"point_count" IS NULL OR "point_count" >= 0')
        self.setStyles([style])

    def clone(self) -> CountingRenderer:
        return CountingRenderer(self.layer, self.counts)  # clones share the tally: QGIS renders with a clone

    def renderTile(self, tile, context) -> None:
        for feature in tile.layerFeatures(self.layer):  # a cluster stands for point_count points
            cluster = feature.fields().indexOf("point_count") >= 0 and feature["point_count"]
            self.counts[self.layer] = self.counts.get(self.layer, 0) + (int(cluster) if cluster else 1)


def auth_config(username: str, password: str) -> str:
    """A Basic auth configuration in a fresh auth database (master password set here); its id."""
    manager = QgsApplication.authManager()
    if not manager.setMasterPassword("onemap-e2e-master", True):
        raise SystemExit("could not set the QGIS master password")
    config = QgsAuthMethodConfig("Basic")
    config.setName("onemap")
    config.setConfig("username", username)
    config.setConfig("password", password)
    if not manager.storeAuthenticationConfig(config)[0]:
        raise SystemExit("could not store the QGIS auth configuration")
    return config.id()


def render(layer, extent: QgsRectangle, size: int = 256):
    """Render one layer over `extent` in Web Mercator; the image."""
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(QgsCoordinateReferenceSystem(WEB_MERCATOR))
    settings.setExtent(extent)
    settings.setOutputSize(QSize(size, size))
    settings.setBackgroundColor(QColor(0, 0, 0, 0))  # transparent: only what the layer draws counts
    # QGIS asks its main thread what to do with a 401 Basic challenge: a job waited on with waitForFinished()
    # would then wait forever, so the main thread runs its event loop until the job is done (as QGIS does).
    job = QgsMapRendererParallelJob(settings)
    loop = QEventLoop()
    job.finished.connect(loop.quit)
    job.start()
    if job.isActive():
        loop.exec_()
    return job.renderedImage()


def oapif(base: str, authcfg: str, collection: str) -> dict:
    """An OGC API Features layer: is it valid, how many features, which township codes."""
    uri = QgsDataSourceUri()
    uri.setParam("url", base)
    uri.setParam("typename", collection)
    if authcfg:
        uri.setAuthConfigId(authcfg)
    layer = QgsVectorLayer(uri.uri(False), collection, "oapif")
    if not layer.isValid():
        return {"valid": False}
    features = list(layer.getFeatures())
    codes = sorted({str(f["township_code"]) for f in features})
    return {"valid": True, "count": len(features), "township_codes": codes}


def vector_tiles(base: str, authcfg: str, collection: str) -> dict:
    """A vector tile layer (xyz) of one collection: the features QGIS decoded from the z7 tile."""
    uri = QgsDataSourceUri()
    uri.setParam("type", "xyz")
    uri.setParam("url", f"{base}/collections/{collection}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}")
    uri.setParam("zmin", "0")
    uri.setParam("zmax", "7")
    if authcfg:
        uri.setAuthConfigId(authcfg)
    layer = QgsVectorTileLayer(bytes(uri.encodedUri()).decode(), collection)
    if not layer.isValid():
        return {"valid": False}
    renderer = CountingRenderer(collection)
    layer.setRenderer(renderer)
    render(layer, Z7_TILE)
    return {"valid": True, "counts": renderer.counts}


def wmts(base: str, authcfg: str, layer_id: str) -> dict:
    """A WMTS layer (provider `wms`): is it valid, and how many of its pixels over the imagery are drawn."""
    uri = QgsDataSourceUri()
    for key, value in (("contextualWMSLegend", "0"), ("crs", WEB_MERCATOR), ("format", "image/png"),
                       ("layers", layer_id), ("styles", "default"), ("tileMatrixSet", "WebMercatorQuad"),
                       ("url", f"{base}/wmts/1.0.0/WMTSCapabilities.xml")):
        uri.setParam(key, value)
    if authcfg:
        uri.setAuthConfigId(authcfg)
    layer = QgsRasterLayer(bytes(uri.encodedUri()).decode(), layer_id, "wms")
    if not layer.isValid():
        return {"valid": False}
    image = render(layer, layer.extent(), 128)
    drawn = sum(1 for x in range(image.width()) for y in range(image.height()) if image.pixelColor(x, y).alpha())
    return {"valid": True, "drawn_pixels": drawn}


def main() -> None:
    """Open the layers named in the arguments and print what QGIS saw."""
    app = QgsApplication([], False, ARGS["home"])
    app.initQgis()
    authcfg = auth_config(ARGS["username"], ARGS["password"]) if ARGS.get("password") is not None else ""
    base = ARGS["base"]
    out = {"oapif": oapif(base, authcfg, ARGS.get("collection", "events")),
           "vector_tiles": vector_tiles(base, authcfg, ARGS.get("collection", "events")),
           "wmts": {name: wmts(base, authcfg, name) for name in ARGS.get("wmts", ["imagery"])}}
    print(json.dumps(out))
    app.exitQgis()


if __name__ == "__main__":
    main()

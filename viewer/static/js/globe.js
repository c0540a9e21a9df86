// 3D in the same page: CesiumJS (served by us from node_modules, no Cesium ion) with the white model
// (/3dtiles/buildings/tileset.json, only the caller's townships) over our imagery, opened on the 2D map's view.
// A click on a building shows its properties in the same identify panel as in 2D.
import { headers } from './api.js';

let globe = null;

function loadCesium() {
  if (window.Cesium) return Promise.resolve();
  window.CESIUM_BASE_URL = '/viewer/vendor/cesium/';
  const css = document.createElement('link');
  css.rel = 'stylesheet';
  css.href = '/viewer/vendor/cesium/Widgets/widgets.css';
  document.head.append(css);
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = '/viewer/vendor/cesium/Cesium.js';
    script.onload = resolve;
    script.onerror = () => reject(new Error('CesiumJS is missing: run `make npm`'));
    document.head.append(script);
  });
}

async function open(app, el) {
  await loadCesium();
  const { Cesium } = window;
  Cesium.Ion.defaultAccessToken = '';
  const viewer = new Cesium.Viewer(el, {
    baseLayer: new Cesium.ImageryLayer(new Cesium.UrlTemplateImageryProvider({
      url: `${window.location.origin}/basemaps/imagery/{z}/{x}/{y}.png`, maximumLevel: 18 })),
    baseLayerPicker: false, geocoder: false, timeline: false, animation: false, homeButton: false,
    sceneModePicker: false, navigationHelpButton: false, fullscreenButton: false, infoBox: false,
    selectionIndicator: true, skyBox: false, skyAtmosphere: false,
  });
  viewer.scene.globe.baseColor = Cesium.Color.fromCssColorString('#2b3a4a');
  const tileset = await Cesium.Cesium3DTileset.fromUrl(new Cesium.Resource({
    url: '/3dtiles/buildings/tileset.json', headers: headers() }));
  viewer.scene.primitives.add(tileset);
  const handler = new Cesium.ScreenSpaceEventHandler(viewer.scene.canvas);
  handler.setInputAction((click) => {
    const picked = viewer.scene.pick(click.position);
    // Leaves carry each building's feature id; the merged blocks of the overview levels carry none.
    const id = picked instanceof Cesium.Cesium3DTileFeature ? picked.getProperty('id') : undefined;
    if (id !== undefined && id !== null) app.identify('buildings', id);
  }, Cesium.ScreenSpaceEventType.LEFT_CLICK);
  globe = { viewer, tileset };
  window.__globe = globe;
}

export async function toggleGlobe(app) {
  const el = document.getElementById('globe');
  if (!el.hidden) { el.hidden = true; return false; }
  el.hidden = false;
  if (!globe) await open(app, el);
  const b = app.map.getBounds();
  const { Cesium } = window;
  // The 2D view's box, seen from the south at 45 degrees.
  const rect = Cesium.Rectangle.fromDegrees(b.getWest(), b.getSouth(), b.getEast(), b.getNorth());
  const centre = Cesium.Rectangle.center(rect);
  const span = Cesium.Cartesian3.distance(Cesium.Cartesian3.fromRadians(rect.west, rect.south),
    Cesium.Cartesian3.fromRadians(rect.east, rect.north));
  globe.viewer.camera.lookAt(Cesium.Cartesian3.fromRadians(centre.longitude, centre.latitude, 0),
    new Cesium.HeadingPitchRange(0, -Math.PI / 4, span * 0.9));
  globe.viewer.camera.lookAtTransform(Cesium.Matrix4.IDENTITY);
  return true;
}

// The map: the server's style (base maps, every readable layer, labels), our origin only, the bearer token on
// our requests; live layers (events) from their own filtered source so filters reach the tiles on the server.
import * as maplibregl from '/viewer/vendor/maplibre/maplibre-gl.mjs';
import { headers } from './api.js';
import { currentLang, onLang, t } from './i18n.js';

export { maplibregl };
// Start MapLibre's worker (and fetch its script) now, while the profile and the style are on their way.
maplibregl.prewarm();
const origin = window.location.origin;
// Live layers drawn from their own /collections/{id}/tiles source: events with the page's filter, positions as
// they move; each is reloaded when /stream says it changed.
export const FILTERED = ['events', 'positions'];
let version = 0;
// Chinese is drawn by the browser from the local font (fonts-wqy-microhei); Latin and digits from /fonts/.
const CJK_FONT = "'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'Noto Sans SC', sans-serif";

export function tileUrl(layerId, cql, v = 0) {
  // `v` (ignored by the server) makes the browser ask again after a change instead of reusing its copy.
  const q = new URLSearchParams();
  if (cql) q.set('filter', cql);
  if (v) q.set('v', v);
  const text = q.toString();
  return `${origin}/collections/${layerId}/tiles/WebMercatorQuad/{z}/{y}/{x}${text ? `?${text}` : ''}`;
}

// Clusters tell open from closed from overdue (the tiles count them); single events keep the status colours.
function clusterPaint(layer) {
  const single = layer.paint['circle-color'];
  return ['case',
    ['has', 'point_count'],
    ['case', ['>', ['coalesce', ['get', 'overdue_count'], 0], 0], '#c0392b',
      ['>', ['coalesce', ['get', 'open_count'], 0], 0], '#e67e22', '#7f8c8d'],
    ['==', ['get', 'due_state'], 'overdue'], '#c0392b',
    single];
}

export async function loadStyle(cql) {
  const res = await fetch('/styles/onemap.json', { headers: headers() });
  if (!res.ok) throw new Error(`style: HTTP ${res.status}`);
  const style = await res.json();
  const extra = [];
  for (const id of FILTERED) {
    const layer = style.layers.find((l) => l.id === id);
    if (!layer) continue;
    style.sources[`${id}-filtered`] = { type: 'vector', tiles: [tileUrl(id, cql[id])], minzoom: layer.minzoom || 0,
      maxzoom: 22 };
    layer.source = `${id}-filtered`;
    if (id !== 'events') continue;
    layer.paint['circle-color'] = clusterPaint(layer);
    extra.push({ id: `${id}-count`, type: 'symbol', source: `${id}-filtered`, 'source-layer': id,
      filter: ['all', ['has', 'point_count'], ['>', ['get', 'point_count'], 1]], minzoom: layer.minzoom || 0,
      layout: { 'text-field': ['to-string', ['get', 'point_count']], 'text-font': ['Sans Regular'], 'text-size': 11,
        'text-allow-overlap': true, 'text-ignore-placement': true },
      paint: { 'text-color': '#ffffff' } });
  }
  // A week of every patrol's tracks and fixes drowns the map (and is most of a tile's drawing): shown on request
  // in the layer tree; the replay draws the one asked for.
  for (const layer of style.layers.filter((l) => ['track_points', 'patrols'].includes(l['source-layer']))) {
    layer.layout = { ...(layer.layout || {}), visibility: 'none' };
  }
  // Clusters of any point layer are drawn larger by count; their counts are written on them.
  style.layers.push(...extra);
  return style;
}

// Township names from one point each (the profile's label points, inside each township) rather than from the
// polygons in the tiles, which MapLibre labels once per tile a township crosses.
export function townshipLabels(style, labels) {
  const layer = style.layers.find((l) => l.id === 'townships-label');
  if (!layer || !labels || !labels.length) return;
  style.sources['township-labels'] = { type: 'geojson', data: { type: 'FeatureCollection', features: labels.map((t) => ({
    type: 'Feature', properties: { township_code: t.code, name: t.name, name_zh: t.name_zh },
    geometry: { type: 'Point', coordinates: t.label } })) } };
  layer.source = 'township-labels';
  delete layer['source-layer'];
  layer.metadata = { ...(layer.metadata || {}), 'onemap:layer': 'townships' };  // the layer tree's group
  layer.minzoom = 6;
  layer.layout['symbol-avoid-edges'] = false;
  layer.layout['text-allow-overlap'] = true;
}

export function createMap(container, style, home) {
  const fromHash = /^#\d/.test(window.location.hash);
  const map = new maplibregl.Map({
    container, style, hash: true, attributionControl: { compact: true },
    localIdeographFontFamily: CJK_FONT,
    transformRequest: (url) => (url.startsWith(origin) ? { url, headers: headers() } : { url }),
    ...(home && !fromHash ? { bounds: home, fitBoundsOptions: { padding: 20 } } : {}),
  });
  map.addControl(new maplibregl.NavigationControl({ visualizePitch: true }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  const coords = document.getElementById('coords');
  const show = (lngLat) => {
    coords.textContent = `${t('coords')} ${lngLat.lng.toFixed(5)}, ${lngLat.lat.toFixed(5)} · ${t('zoom')} ${map.getZoom().toFixed(1)}`;
  };
  map.on('mousemove', (e) => show(e.lngLat));
  map.on('moveend', () => show(map.getCenter()));
  map.once('load', () => show(map.getCenter()));
  onLang(() => { labelLanguage(map); show(map.getCenter()); });
  map.on('load', () => labelLanguage(map));
  return map;
}

// Township names: Chinese (name_zh) first, the romanised name in English; other layers have one name.
export function labelLanguage(map) {
  if (!map.getLayer('townships-label')) return;
  const field = currentLang() === 'zh' ? ['coalesce', ['get', 'name_zh'], ['get', 'name']]
    : ['coalesce', ['get', 'name'], ['get', 'name_zh']];
  map.setLayoutProperty('townships-label', 'text-field', field);
}

export function setFilteredTiles(map, layerId, cql) {
  const source = map.getSource(`${layerId}-filtered`);
  version += 1;
  if (source) source.setTiles([tileUrl(layerId, cql, version)]);
}

export function fitBbox(map, bbox, maxZoom = 17) {
  if (!bbox) return;
  if (bbox[0] === bbox[2] && bbox[1] === bbox[3]) map.flyTo({ center: [bbox[0], bbox[1]], zoom: Math.max(map.getZoom(), 16) });
  else map.fitBounds([[bbox[0], bbox[1]], [bbox[2], bbox[3]]], { padding: 40, maxZoom });
}

// The one-map page: the county from /styles/onemap.json (vector tiles, scoped to whoever is logged in),
// over our own imagery tiles. MapLibre comes from the npm registry, served by onemap itself.
import * as maplibregl from '/viewer/vendor/maplibre/maplibre-gl.mjs';

const origin = window.location.origin;
const hashToken = new URLSearchParams(window.location.hash.slice(1)).get('token');
if (hashToken) sessionStorage.setItem('onemap-token', hashToken);
const token = () => sessionStorage.getItem('onemap-token');

// Our own requests carry the token; nothing goes anywhere else.
const transformRequest = (url) => {
  if (token() && url.startsWith(origin)) return { url, headers: { Authorization: `Bearer ${token()}` } };
  return { url };
};

async function loadStyle() {
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  const res = await fetch('/styles/onemap.json', { headers });
  if (res.status === 401) { sessionStorage.removeItem('onemap-token'); return loadStyle(); }
  const style = await res.json();
  style.sources.imagery = {
    type: 'raster', tileSize: 256, attribution: 'onemap sample imagery',
    tiles: [`${origin}/collections/imagery/map/tiles/WebMercatorQuad/{z}/{y}/{x}?f=jpeg`],
  };
  const at = style.layers.findIndex((l) => l.type !== 'background');
  style.layers.splice(at < 0 ? style.layers.length : at, 0, { id: 'imagery', type: 'raster', source: 'imagery' });
  return style;
}

function layerTree(map, style) {
  const list = document.getElementById('layers');
  list.replaceChildren();
  const seen = new Set();
  for (const layer of style.layers) {
    const group = layer['source-layer'];
    if (!group || seen.has(group)) continue;
    seen.add(group);
    const paint = layer.paint || {};
    // A colour, or a ['match', …, default] expression: the swatch shows the default.
    const colour = [paint['fill-extrusion-color'], paint['fill-color'], paint['line-color'], paint['circle-color']]
      .map((c) => (Array.isArray(c) && c[0] === 'match' ? c[c.length - 1] : c))
      .find((c) => typeof c === 'string') || '#888';
    const item = document.createElement('li');
    item.innerHTML = `<label><input type="checkbox" checked><span class="swatch"></span>${group}</label>`;
    item.querySelector('.swatch').style.background = colour;
    item.querySelector('input').addEventListener('change', (ev) => {
      for (const l of style.layers) {
        if (l['source-layer'] === group) map.setLayoutProperty(l.id, 'visibility', ev.target.checked ? 'visible' : 'none');
      }
    });
    list.append(item);
  }
}

async function who() {
  if (!token()) return null;
  const payload = JSON.parse(atob(token().split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  return payload;
}

async function start() {
  const style = await loadStyle();
  const map = new maplibregl.Map({ container: 'map', style, transformRequest, hash: true, attributionControl: { compact: true } });
  map.addControl(new maplibregl.NavigationControl());
  map.addControl(new maplibregl.ScaleControl());
  window.__map = map;
  map.once('idle', () => { window.__ready = true; });
  map.on('error', (e) => { document.getElementById('status').textContent = String(e.error && e.error.message || e); });
  layerTree(map, style);
  document.getElementById('imagery').addEventListener('change', (ev) => {
    map.setLayoutProperty('imagery', 'visibility', ev.target.checked ? 'visible' : 'none');
  });
  const me = await who();
  if (me) {
    document.getElementById('who').textContent = `${me.sub} (${me.role})`;
    document.getElementById('login').hidden = true;
    document.getElementById('logout').hidden = false;
  }
}

document.getElementById('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const res = await fetch('/auth/token', { method: 'POST', body: new URLSearchParams(new FormData(ev.target)) });
  if (!res.ok) { document.getElementById('status').textContent = 'login failed'; return; }
  sessionStorage.setItem('onemap-token', (await res.json()).access_token);
  window.location.reload();
});
document.getElementById('logout').addEventListener('click', () => {
  sessionStorage.removeItem('onemap-token');
  window.location.hash = '';
  window.location.reload();
});

start();

// Identify: a click on a feature shows its properties, read from /collections/{id}/items/{fid} under the
// caller's scope; a click on a cluster zooms into it. Links to the timeline, readings or replay where they apply.
import { get, query } from '../api.js';
import { layerName, propName, t, valueName } from '../i18n.js';

const SKIP = new Set(['township_code', 'grid_code']);

function table(props) {
  const tbl = document.createElement('table');
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || v === '' || SKIP.has(k)) continue;
    const tr = document.createElement('tr');
    tr.innerHTML = '<th></th><td></td>';
    tr.firstChild.textContent = propName(k);
    tr.firstChild.title = k;
    tr.lastChild.textContent = typeof v === 'object' ? JSON.stringify(v) : typeof v === 'boolean' ? t(v ? 'yes' : 'no') : valueName(v);
    tbl.append(tr);
  }
  for (const k of ['township_code', 'grid_code']) {
    if (props[k]) { const tr = document.createElement('tr'); tr.innerHTML = '<th></th><td></td>'; tr.firstChild.textContent = propName(k); tr.firstChild.title = k; tr.lastChild.textContent = props[k]; tbl.append(tr); }
  }
  return tbl;
}

export function setupIdentify(map, app) {
  const panel = document.getElementById('identify');
  const body = panel.querySelector('.body');
  panel.querySelector('.close').addEventListener('click', () => { panel.hidden = true; app.select(null); });

  map.on('click', async (e) => {
    const hits = map.queryRenderedFeatures(e.point).filter((f) => f.sourceLayer && f.layer.type !== 'symbol');
    if (!hits.length) return;
    const f = hits[0];
    if (f.properties.point_count !== undefined) {  // a cluster: look closer
      map.easeTo({ center: e.lngLat, zoom: Math.min(map.getZoom() + 2, 18) });
      return;
    }
    await show(f.sourceLayer, f.id);
  });

  async function show(layerId, fid) {
    panel.hidden = false;
    body.textContent = t('loading');
    let feature;
    try {
      feature = await get(`/collections/${encodeURIComponent(layerId)}/items/${encodeURIComponent(fid)}`);
    } catch (err) {
      body.textContent = String(err.message || err);
      return;
    }
    window.__identified = { layer: layerId, id: feature.id, properties: feature.properties };
    body.replaceChildren();
    const h = document.createElement('h3');
    h.textContent = `${layerName(layerId)} · ${feature.properties.name || feature.properties.title || feature.properties.event_code || feature.id}`;
    body.append(h, table(feature.properties));
    const links = document.createElement('p');
    links.className = 'links';
    const link = (label, fn) => { const b = document.createElement('button'); b.textContent = label; b.addEventListener('click', fn); links.append(b); };
    if (layerId === 'events') link(t('timeline'), () => app.openEvent(feature.id));
    if (layerId === 'patrols' && app.replay) link(t('replay'), () => app.replay(feature.id));
    if (layerId === 'monitoring_sites') link(t('readings'), () => readings(feature.id, body));
    if (links.childNodes.length) body.append(links);
    app.select({ layer: layerId, id: feature.id });
  }
  app.identify = show;
}

async function readings(siteId, body) {
  const page = await get(`/collections/readings/items?${query({ site_id: siteId, sortby: '-observed_at', limit: 10 })}`);
  const tbl = document.createElement('table');
  tbl.className = 'readings';
  for (const f of page.features) {
    const p = f.properties;
    const tr = document.createElement('tr');
    tr.innerHTML = '<td></td><td></td><td></td>';
    tr.children[0].textContent = p.observed_at;
    tr.children[1].textContent = p.metric;
    tr.children[2].textContent = `${p.value} ${p.unit || ''}`;
    tbl.append(tr);
  }
  body.append(tbl);
}

// Heat map: events or alarms counted by H3 hexagon over a time window (GET /heatmap, scoped on the server),
// drawn under the points; the resolution follows the zoom and the view's box.
import { get, query } from '../api.js';
import { t, onLang } from '../i18n.js';

const SOURCE = 'heat-window';
const RAMP = ['interpolate', ['linear'], ['get', 'count'], 1, '#ffffb2', 5, '#fecc5c', 20, '#fd8d3c', 50, '#f03b20', 200, '#bd0026'];

function resolution(zoom) {
  return zoom < 9 ? 6 : zoom < 11 ? 7 : zoom < 13 ? 8 : 9;
}

export function setupHeat(app, layers) {
  const form = document.getElementById('heat');
  const map = app.map;
  const state = { layer: '', days: 90 };
  let timer = null;

  const render = () => {
    form.innerHTML = `<h2>${t('heatmap')}</h2>
      <label><input type="radio" name="heat" value="" ${!state.layer ? 'checked' : ''}> ${t('off')}</label>
      ${layers.map((l) => `<label><input type="radio" name="heat" value="${l}" ${state.layer === l ? 'checked' : ''}> ${t(l)}</label>`).join('')}
      <label>${t('lastDays')} <input type="number" name="heatDays" min="1" max="3650" value="${state.days}"></label>`;
    for (const input of form.querySelectorAll('input')) input.addEventListener('change', () => {
      state.layer = form.querySelector('[name=heat]:checked').value;
      state.days = Math.max(1, Number(form.querySelector('[name=heatDays]').value || 90));
      load();
    });
  };

  async function load() {
    if (!map.getSource(SOURCE)) {
      map.addSource(SOURCE, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
      const below = map.getStyle().layers.find((l) => l.type === 'circle' || l.type === 'symbol');
      map.addLayer({ id: SOURCE, type: 'fill', source: SOURCE,
        paint: { 'fill-color': RAMP, 'fill-opacity': 0.65, 'fill-outline-color': '#ffffff' } }, below && below.id);
    }
    if (!state.layer) { map.getSource(SOURCE).setData({ type: 'FeatureCollection', features: [] }); window.__heat = null; return; }
    const b = map.getBounds();
    const since = new Date(Date.now() - state.days * 86400000);
    since.setUTCMinutes(0, 0, 0);
    const params = { layer: state.layer, resolution: resolution(map.getZoom()),
      datetime: `${since.toISOString().replace('.000Z', 'Z')}/..`,
      bbox: [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(',') };
    try {
      const data = await get(`/heatmap?${query(params)}`);
      map.getSource(SOURCE).setData(data);
      window.__heat = { layer: state.layer, hexagons: data.features.length };
    } catch (err) { app.toast(String(err.message || err), true); }
  }

  map.on('moveend', () => { if (state.layer) { clearTimeout(timer); timer = setTimeout(load, 300); } });
  render();
  onLang(render);
}

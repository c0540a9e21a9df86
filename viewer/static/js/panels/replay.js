// Track replay: a patrol's fixes (OGC API - Moving Features tgsequence) drawn progressively with the current
// position, play/pause, a slider to scrub, speed x1-x64, distance so far, stops, and a speed chart (ECharts).
import { get } from '../api.js';
import { t } from '../i18n.js';

const SRC = 'replay';
const STOP_SECONDS = 120;  // no move of more than STOP_METRES for this long is a stop
const STOP_METRES = 30;

function metres(a, b) {
  const r = 6371008.8;
  const rad = Math.PI / 180;
  const dlat = (b[1] - a[1]) * rad;
  const dlon = (b[0] - a[0]) * rad;
  const h = Math.sin(dlat / 2) ** 2 + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dlon / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(h));
}

function stops(coords, times) {
  const out = [];
  let i = 0;
  while (i < coords.length) {
    let j = i;
    while (j + 1 < coords.length && metres(coords[i], coords[j + 1]) < STOP_METRES) j += 1;
    if ((times[j] - times[i]) / 1000 >= STOP_SECONDS) out.push({ at: coords[i], from: times[i], to: times[j] });
    i = j + 1;
  }
  return out;
}

export function setupReplay(app) {
  const panel = document.getElementById('replay');
  const map = app.map;
  let track = null;
  let timer = null;
  let chart = null;

  function ensureLayers() {
    if (map.getSource(SRC)) return;
    map.addSource(SRC, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    map.addLayer({ id: `${SRC}-line`, type: 'line', source: SRC, filter: ['==', ['get', 'part'], 'done'],
      paint: { 'line-color': '#d35400', 'line-width': 4 } });
    map.addLayer({ id: `${SRC}-stops`, type: 'circle', source: SRC, filter: ['==', ['get', 'part'], 'stop'],
      paint: { 'circle-radius': 6, 'circle-color': '#8e44ad', 'circle-stroke-color': '#fff', 'circle-stroke-width': 1 } });
    map.addLayer({ id: `${SRC}-now`, type: 'circle', source: SRC, filter: ['==', ['get', 'part'], 'now'],
      paint: { 'circle-radius': 8, 'circle-color': '#e74c3c', 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } });
  }

  // The position at time `at` (ms), interpolated between fixes, and the fixes passed by then.
  function at(ms) {
    const { coords, times } = track;
    let i = times.findIndex((x) => x > ms);
    if (i < 0) i = times.length;
    if (i === 0) return { passed: [coords[0]], now: coords[0], n: 0 };
    const a = coords[i - 1];
    const b = coords[Math.min(i, coords.length - 1)];
    const span = (times[Math.min(i, times.length - 1)] - times[i - 1]) || 1;
    const f = i >= times.length ? 0 : (ms - times[i - 1]) / span;
    const now = [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f];
    return { passed: [...coords.slice(0, i), now], now, n: i };
  }

  function draw(ms) {
    const { passed, now, n } = at(ms);
    let dist = 0;
    for (let k = 1; k < passed.length; k += 1) dist += metres(passed[k - 1], passed[k]);
    const features = [
      { type: 'Feature', properties: { part: 'done' }, geometry: { type: 'LineString', coordinates: passed.length > 1 ? passed : [now, now] } },
      { type: 'Feature', properties: { part: 'now' }, geometry: { type: 'Point', coordinates: now } },
      ...track.stops.filter((s) => s.from <= ms).map((s) => ({ type: 'Feature', properties: { part: 'stop' }, geometry: { type: 'Point', coordinates: s.at } })),
    ];
    map.getSource(SRC).setData({ type: 'FeatureCollection', features });
    panel.querySelector('.clock').textContent = new Date(ms).toISOString().slice(11, 19);
    panel.querySelector('.dist').textContent = `${(dist / 1000).toFixed(2)} km`;
    panel.querySelector('[name=scrub]').value = String(ms - track.times[0]);
    window.__replay = { at: ms, distance: dist, fix: n, position: now };
    if (chart) chart.dispatchAction({ type: 'showTip', seriesIndex: 0, dataIndex: Math.max(0, n - 1) });
  }

  function play() {
    clearInterval(timer);
    const step = 100;
    timer = setInterval(() => {
      const speed = Number(panel.querySelector('[name=speed]').value);
      const next = Number(panel.querySelector('[name=scrub]').value) + track.times[0] + step * speed * 10;
      if (next >= track.times[track.times.length - 1]) { draw(track.times[track.times.length - 1]); clearInterval(timer); timer = null; return; }
      draw(next);
    }, step);
  }

  async function open(patrolId) {
    clearInterval(timer);
    ensureLayers();
    const seq = await get(`/collections/patrols/items/${patrolId}/tgsequence`);
    const mp = seq.geometrySequence[0];
    const times = mp.datetimes.map((d) => Date.parse(d));
    track = { id: patrolId, coords: mp.coordinates, times, stops: stops(mp.coordinates, times) };
    panel.hidden = false;
    panel.innerHTML = `<button class="close">${t('close')}</button><h3>${t('replay')} #${patrolId}</h3>
      <p><button name="play">▶</button> <button name="pause">❚❚</button>
      <select name="speed">${[1, 2, 4, 8, 16, 32, 64].map((s) => `<option value="${s}" ${s === 16 ? 'selected' : ''}>×${s}</option>`).join('')}</select>
      <span class="clock"></span> · <span class="dist"></span> · ${track.stops.length} ${t('stops')}</p>
      <input type="range" name="scrub" min="0" max="${times[times.length - 1] - times[0]}" value="0" step="1000">
      <div class="chart"></div>`;
    panel.querySelector('.close').addEventListener('click', () => { clearInterval(timer); panel.hidden = true; map.getSource(SRC).setData({ type: 'FeatureCollection', features: [] }); });
    panel.querySelector('[name=play]').addEventListener('click', play);
    panel.querySelector('[name=pause]').addEventListener('click', () => { clearInterval(timer); timer = null; });
    panel.querySelector('[name=scrub]').addEventListener('input', (ev) => draw(track.times[0] + Number(ev.target.value)));
    const lons = mp.coordinates.map((c) => c[0]);
    const lats = mp.coordinates.map((c) => c[1]);
    map.fitBounds([[Math.min(...lons), Math.min(...lats)], [Math.max(...lons), Math.max(...lats)]], { padding: 60, maxZoom: 17 });
    draw(times[0]);
    speedChart(patrolId, panel.querySelector('.chart'));
  }

  async function speedChart(patrolId, el) {
    try {
      const [echarts, v] = await Promise.all([import('/viewer/vendor/echarts/echarts.esm.min.mjs'),
        get(`/collections/patrols/items/${patrolId}/tgsequence/1/velocity`)]);
      const seq = v.valueSequence[0];
      chart = echarts.init(el, null, { renderer: 'canvas', height: 140 });
      chart.setOption({ grid: { left: 36, right: 8, top: 8, bottom: 20 }, tooltip: { trigger: 'axis' },
        xAxis: { type: 'time' }, yAxis: { type: 'value', name: 'm/s' },
        series: [{ type: 'line', showSymbol: false, data: seq.datetimes.map((d, i) => [d, seq.values[i]]) }] });
    } catch (err) { el.textContent = String(err.message || err); }
  }

  app.replay = open;
}

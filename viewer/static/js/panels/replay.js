// Track replay: pick a day and a worker (the day's patrols in the caller's scope), or a patrol from the map, and
// replay the fixes (OGC API - Moving Features tgsequence): the track draws progressively with the current
// position, play/pause, a slider to scrub, speed x1-x64, distance so far, stops, and a speed chart (ECharts,
// served by us from node_modules). A day of several patrols plays as one track; the gaps between patrols are
// skipped when playing and never counted as distance.
import { get, query } from '../api.js';
import { t, onLang } from '../i18n.js';

const SRC = 'replay';
const STOP_SECONDS = 120;  // no move of more than STOP_METRES for this long is a stop
const STOP_METRES = 30;
const BASE = 10;  // x1 plays 10 s of track per second; x64 plays 640 s
const TICK = 100;
const SPEEDS = [1, 2, 4, 8, 16, 32, 64];
const CST = '+08:00';  // days are China Standard Time days

function metres(a, b) {
  const r = 6371008.8;
  const rad = Math.PI / 180;
  const dlat = (b[1] - a[1]) * rad;
  const dlon = (b[0] - a[0]) * rad;
  const h = Math.sin(dlat / 2) ** 2 + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dlon / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(h));
}

function stopsOf(coords, times, from, to) {
  const out = [];
  let i = from;
  while (i < to) {
    let j = i;
    while (j + 1 < to && metres(coords[i], coords[j + 1]) < STOP_METRES) j += 1;
    if ((times[j] - times[i]) / 1000 >= STOP_SECONDS) out.push({ at: coords[i], from: times[i], to: times[j] });
    i = j + 1;
  }
  return out;
}

const hhmm = (ms) => new Date(ms + 8 * 3600e3).toISOString().slice(11, 19);  // the clock in CST
const dayOf = (iso) => new Date(Date.parse(iso) + 8 * 3600e3).toISOString().slice(0, 10);

// Several patrols' sequences as one track: fixes in time order, the segment (patrol) of each fix, the distance
// travelled up to each fix (within patrols only) and the speed into each fix.
export function joinTrack(sequences) {
  const segs = sequences.map((s) => {
    const mp = s.geometrySequence[0] || { coordinates: [], datetimes: [] };
    return { coords: mp.coordinates, times: mp.datetimes.map((d) => Date.parse(d)) };
  }).filter((s) => s.times.length).sort((a, b) => a.times[0] - b.times[0]);
  const track = { coords: [], times: [], seg: [], cum: [], speed: [], stops: [], starts: [] };
  segs.forEach((s, k) => {
    const first = track.times.length;
    track.starts.push(first);
    s.coords.forEach((c, i) => {
      const same = i > 0;
      const d = same ? metres(s.coords[i - 1], c) : 0;
      const dt = same ? (s.times[i] - s.times[i - 1]) / 1000 : 0;
      track.coords.push(c);
      track.times.push(s.times[i]);
      track.seg.push(k);
      track.cum.push((track.cum.length ? track.cum[track.cum.length - 1] : 0) + d);
      track.speed.push(same && dt > 0 ? d / dt : null);
    });
    track.stops.push(...stopsOf(track.coords, track.times, first, track.times.length));
  });
  return track;
}

export function setupReplay(app) {
  const panel = document.getElementById('replay');
  const picker = document.getElementById('replay-picker');
  const map = app.map;
  let track = null;
  let timer = null;
  let chart = null;
  let now = 0;
  let dayPatrols = [];

  function ensureLayers() {
    if (map.getSource(SRC)) return;
    map.addSource(SRC, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    map.addLayer({ id: `${SRC}-all`, type: 'line', source: SRC, filter: ['==', ['get', 'part'], 'all'],
      paint: { 'line-color': '#ffffff', 'line-width': 2, 'line-opacity': 0.6, 'line-dasharray': [2, 2] } });
    map.addLayer({ id: `${SRC}-line`, type: 'line', source: SRC, filter: ['==', ['get', 'part'], 'done'],
      layout: { 'line-cap': 'round', 'line-join': 'round' }, paint: { 'line-color': '#ff6a00', 'line-width': 4 } });
    map.addLayer({ id: `${SRC}-stops`, type: 'circle', source: SRC, filter: ['==', ['get', 'part'], 'stop'],
      paint: { 'circle-radius': 6, 'circle-color': '#8e44ad', 'circle-stroke-color': '#fff', 'circle-stroke-width': 1 } });
    map.addLayer({ id: `${SRC}-now`, type: 'circle', source: SRC, filter: ['==', ['get', 'part'], 'now'],
      paint: { 'circle-radius': 8, 'circle-color': '#e74c3c', 'circle-stroke-color': '#fff', 'circle-stroke-width': 3 } });
  }

  // Where the worker is at `ms`: interpolated within a patrol, waiting at the last fix between patrols.
  function at(ms) {
    const { coords, times, seg, cum } = track;
    let lo = 0;
    let hi = times.length;  // the first fix after ms
    while (lo < hi) { const mid = (lo + hi) >> 1; if (times[mid] > ms) hi = mid; else lo = mid + 1; }
    const i = lo;
    if (i === 0) return { now: coords[0], n: 0, dist: 0 };
    const a = coords[i - 1];
    if (i >= times.length || seg[i] !== seg[i - 1]) return { now: a, n: i, dist: cum[i - 1] };
    const f = (ms - times[i - 1]) / ((times[i] - times[i - 1]) || 1);
    const b = coords[i];
    const p = [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f];
    return { now: p, n: i, dist: cum[i - 1] + metres(a, p) };
  }

  function draw(ms) {
    now = ms;
    const { now: pos, n, dist } = at(ms);
    const lines = [];
    for (let k = 0; k < track.starts.length; k += 1) {
      const from = track.starts[k];
      if (from >= n) break;
      const to = k + 1 < track.starts.length ? Math.min(track.starts[k + 1], n) : n;
      const part = track.coords.slice(from, to);
      if (to === n && (n >= track.times.length || track.seg[n] === k)) part.push(pos);
      lines.push(part.length > 1 ? part : [part[0], part[0]]);
    }
    const features = [
      { type: 'Feature', properties: { part: 'all' }, geometry: { type: 'MultiLineString',
        coordinates: track.starts.map((s, k) => track.coords.slice(s, track.starts[k + 1] ?? track.coords.length)) } },
      { type: 'Feature', properties: { part: 'done' }, geometry: { type: 'MultiLineString', coordinates: lines.length ? lines : [[pos, pos]] } },
      ...track.stops.filter((s) => s.from <= ms).map((s) => ({ type: 'Feature', properties: { part: 'stop' },
        geometry: { type: 'Point', coordinates: s.at } })),
      { type: 'Feature', properties: { part: 'now' }, geometry: { type: 'Point', coordinates: pos } },
    ];
    map.getSource(SRC).setData({ type: 'FeatureCollection', features });
    const stopsSoFar = track.stops.filter((s) => s.from <= ms).length;
    panel.querySelector('.clock').textContent = hhmm(ms);
    panel.querySelector('.dist').textContent = `${(dist / 1000).toFixed(2)} km`;
    panel.querySelector('.stops').textContent = `${stopsSoFar}/${track.stops.length} ${t('stops')}`;
    panel.querySelector('[name=scrub]').value = String(ms - track.times[0]);
    window.__replay = { at: ms, distance: dist, fix: n, position: pos, stops: stopsSoFar, patrols: track.ids,
      playing: Boolean(timer) };
    if (chart) chart.setOption({ series: [{ id: 'speed', markLine: { silent: true, symbol: 'none',
      lineStyle: { color: '#e74c3c' }, label: { show: false }, data: [{ xAxis: ms }] } }] });
  }

  // While replaying, the county's other tracks and fixes are hidden (they drown the one replayed).
  const CLUTTER = ['patrols', 'track_points'];
  let hidden = [];
  function declutter(on) {
    if (on && !hidden.length) {
      hidden = map.getStyle().layers.filter((l) => CLUTTER.includes(l['source-layer'])
        && map.getLayoutProperty(l.id, 'visibility') !== 'none').map((l) => l.id);
      for (const id of hidden) map.setLayoutProperty(id, 'visibility', 'none');
    } else if (!on) {
      for (const id of hidden) if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', 'visible');
      hidden = [];
    }
  }

  function stop() { clearInterval(timer); timer = null; if (window.__replay) window.__replay.playing = false; }

  function play() {
    stop();
    const end = track.times[track.times.length - 1];
    if (now >= end) draw(track.times[0]);
    timer = setInterval(() => {
      const speed = Number(panel.querySelector('[name=speed]').value);
      let next = now + TICK * speed * BASE;
      const { n } = at(now);
      // Between two patrols: go straight to the next one.
      if (n > 0 && n < track.times.length && track.seg[n] !== track.seg[n - 1] && next < track.times[n]) next = track.times[n];
      if (next >= end) { draw(end); stop(); return; }
      draw(next);
    }, TICK);
    window.__replay.playing = true;
  }

  async function speedChart(el) {
    try {
      const echarts = await import('/viewer/vendor/echarts/echarts.esm.min.mjs');
      if (chart) chart.dispose();
      chart = echarts.init(el, null, { renderer: 'canvas' });
      const data = track.times.map((ms, i) => [ms, track.speed[i] == null ? null : +(track.speed[i] * 3.6).toFixed(1)]);
      chart.setOption({
        animation: false,
        grid: { left: 40, right: 12, top: 30, bottom: 22 },
        tooltip: { trigger: 'axis', valueFormatter: (v) => (v == null ? '-' : `${v} km/h`) },
        xAxis: { type: 'time', axisLabel: { formatter: (v) => hhmm(v).slice(0, 5), fontSize: 10 } },
        yAxis: { type: 'value', name: t('speedKmh'), nameTextStyle: { fontSize: 10, align: 'left' }, axisLabel: { fontSize: 10 } },
        series: [{ id: 'speed', type: 'line', showSymbol: false, connectNulls: false, data,
          lineStyle: { width: 1, color: '#1f4e79' }, areaStyle: { color: 'rgba(31,78,121,0.15)' } }],
      });
      // A click on the chart moves the replay to that moment.
      chart.getZr().on('click', (e) => {
        const [ms] = chart.convertFromPixel({ seriesIndex: 0 }, [e.offsetX, e.offsetY]);
        if (Number.isFinite(ms)) draw(Math.min(Math.max(ms, track.times[0]), track.times[track.times.length - 1]));
      });
      draw(now);
      window.__replayChart = true;
    } catch (err) { el.textContent = String(err.message || err); }
  }

  // Play a list of patrols (one, or a worker's day) as one track.
  async function open(ids, title) {
    stop();
    ensureLayers();
    const sequences = await Promise.all(ids.map((id) => get(`/collections/patrols/items/${id}/tgsequence`)));
    track = joinTrack(sequences);
    track.ids = ids;
    if (!track.times.length) { app.toast(t('noFixes'), true); return; }
    const times = track.times;
    declutter(true);
    panel.hidden = false;
    panel.innerHTML = `<button class="close">${t('close')}</button><h3></h3>
      <p class="controls"><button name="play" title="${t('play')}">▶</button> <button name="pause" title="${t('pause')}">❚❚</button>
      <select name="speed" title="${t('speed')}">${SPEEDS.map((s) => `<option value="${s}" ${s === 16 ? 'selected' : ''}>×${s}</option>`).join('')}</select>
      <span class="clock"></span> · <span class="dist"></span> · <span class="stops"></span></p>
      <input type="range" name="scrub" min="0" max="${times[times.length - 1] - times[0]}" value="0" step="1000">
      <div class="chart"></div>`;
    panel.querySelector('h3').textContent = `${t('replay')} · ${title}`;
    panel.querySelector('.close').addEventListener('click', () => {
      stop(); panel.hidden = true; map.getSource(SRC).setData({ type: 'FeatureCollection', features: [] });
      declutter(false);
    });
    panel.querySelector('[name=play]').addEventListener('click', play);
    panel.querySelector('[name=pause]').addEventListener('click', stop);
    panel.querySelector('[name=scrub]').addEventListener('input', (ev) => draw(times[0] + Number(ev.target.value)));
    const lons = track.coords.map((c) => c[0]);
    const lats = track.coords.map((c) => c[1]);
    map.fitBounds([[Math.min(...lons), Math.min(...lats)], [Math.max(...lons), Math.max(...lats)]],
      { padding: { top: 60, bottom: 300, left: 60, right: 60 }, maxZoom: 17 });
    draw(times[0]);
    speedChart(panel.querySelector('.chart'));
  }

  // The picker: a day, the workers who patrolled it (in scope), and the chosen worker's patrols that day.
  function renderPicker() {
    picker.innerHTML = `<label>${t('day')} <input type="date" name="day"></label>
      <label>${t('worker')} <select name="worker"></select></label>
      <p><button type="button" name="replayDay">${t('replayDay')}</button></p><ul class="patrols"></ul>`;
    picker.querySelector('[name=day]').addEventListener('change', (ev) => loadDay(ev.target.value));
    picker.querySelector('[name=worker]').addEventListener('change', () => showWorker());
    picker.querySelector('[name=replayDay]').addEventListener('click', () => {
      const worker = picker.querySelector('[name=worker]').value;
      const mine = dayPatrols.filter((f) => f.properties.worker === worker);
      if (mine.length) open(mine.map((f) => f.id), `${worker} · ${picker.querySelector('[name=day]').value}`);
    });
  }

  async function loadDay(day, worker) {
    picker.querySelector('[name=day]').value = day;
    const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86400e3).toISOString().slice(0, 10);
    const page = await get(`/collections/patrols/items?${query({ datetime: `${day}T00:00:00${CST}/${next}T00:00:00${CST}`,
      skipGeometry: 'true', properties: 'worker,grid_code,started_at,ended_at,distance_m,status', sortby: 'started_at', limit: 1000 })}`);
    dayPatrols = page.features.filter((f) => dayOf(f.properties.started_at) === day);
    const counts = new Map();
    for (const f of dayPatrols) counts.set(f.properties.worker, (counts.get(f.properties.worker) || 0) + 1);
    const select = picker.querySelector('[name=worker]');
    select.replaceChildren();
    for (const [w, c] of [...counts].sort()) {
      const o = document.createElement('option');
      o.value = w;
      o.textContent = `${w} (${c})`;
      select.append(o);
    }
    if (worker && counts.has(worker)) select.value = worker;
    if (!counts.size) { picker.querySelector('.patrols').textContent = t('noResults'); return; }
    showWorker();
  }

  function showWorker() {
    const worker = picker.querySelector('[name=worker]').value;
    const ul = picker.querySelector('.patrols');
    ul.replaceChildren();
    for (const f of dayPatrols.filter((p) => p.properties.worker === worker)) {
      const li = document.createElement('li');
      li.dataset.id = f.id;
      const p = f.properties;
      li.textContent = `#${f.id} ${hhmm(Date.parse(p.started_at)).slice(0, 5)}–${p.ended_at ? hhmm(Date.parse(p.ended_at)).slice(0, 5) : '…'}`
        + ` · ${((p.distance_m || 0) / 1000).toFixed(1)} km`;
      li.addEventListener('click', () => open([f.id], `${worker} #${f.id}`));
      ul.append(li);
    }
  }

  async function start() {
    renderPicker();
    let latest;
    try {
      latest = await get(`/collections/patrols/items?${query({ sortby: '-started_at', limit: 1, skipGeometry: 'true',
        properties: 'started_at' })}`);
    } catch { return; }
    const day = latest.features.length ? dayOf(latest.features[0].properties.started_at) : dayOf(new Date().toISOString());
    await loadDay(day);
    window.__replayPicker = true;
  }

  // From the map (identify a patrol): that patrol, and the picker on its worker's day.
  app.replay = async (patrolId) => {
    const f = await get(`/collections/patrols/items/${patrolId}?skipGeometry=true`);
    app.showTab('replay');
    await loadDay(dayOf(f.properties.started_at), f.properties.worker);
    await open([patrolId], `${f.properties.worker} #${patrolId}`);
  };
  app.replayDay = (day, worker) => loadDay(day, worker);
  onLang(() => { const day = picker.querySelector('[name=day]').value; renderPicker(); if (day) loadDay(day); });
  return start();
}

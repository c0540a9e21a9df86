// The one-map application: wires the session, the map and the panels together. window.__map, window.__ready
// and window.__app are there for the browser tests.
import { get } from './api.js';
import { login, logout, token } from './auth.js';
import { applyText, t, toggleLang } from './i18n.js';
import { buildTree } from './layers.js';
import { createMap, loadStyle, setFilteredTiles, townshipLabels } from './map.js';
import { setupAlarms } from './panels/alarms.js';
import { setupEvents } from './panels/events.js';
import { defaultState, eventsCql, setupFilters } from './panels/filters.js';
import { setupHeat } from './panels/heat.js';
import { setupIdentify } from './panels/identify.js';
import { setupReplay } from './panels/replay.js';
import { setupSearch } from './panels/search.js';
import { toggleGlobe } from './globe.js';
import { follow } from './stream.js';

const $ = (id) => document.getElementById(id);

const app = {
  filters: defaultState(),
  profile: null,
  map: null,
  select() {},
  refreshLive() {},
  toast(message, bad = false) {
    const el = $('toast');
    el.textContent = message;
    el.className = bad ? 'bad' : '';
    el.hidden = false;
    clearTimeout(app._toast);
    app._toast = setTimeout(() => { el.hidden = true; }, 4000);
  },
  showTab(name) {
    for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.tab === name);
    for (const s of document.querySelectorAll('aside section[data-tab]')) s.hidden = s.dataset.tab !== name;
  },
  applyFilters() {
    setFilteredTiles(app.map, 'events', eventsCql(app.filters));
    const towns = (app.profile.township_list || []).filter((tw) => app.filters.townships.includes(tw.code));
    if (towns.length) {
      const b = towns.reduce((a, tw) => [Math.min(a[0], tw.bbox[0]), Math.min(a[1], tw.bbox[1]),
        Math.max(a[2], tw.bbox[2]), Math.max(a[3], tw.bbox[3])], [180, 90, -180, -90]);
      app.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 20 });
    }
    // Area layers carry township_code in every tile: the township filter applies to them in the browser too.
    for (const id of ['villages', 'grids', 'buildings', 'patrols']) {
      for (const layer of app.map.getStyle().layers.filter((l) => l['source-layer'] === id)) {
        const keep = app.filters.townships.length ? ['in', ['get', 'township_code'], ['literal', app.filters.townships]] : null;
        app.map.setFilter(layer.id, layer.id.endsWith('-label') && layer.filter ? (keep ? ['all', layer.filter, keep] : layer.filter) : keep);
      }
    }
    if (app.refreshEvents) app.refreshEvents();
    window.__filtered = eventsCql(app.filters);
  },
};
window.__app = app;

function session(profile) {
  $('who').textContent = profile.username ? `${profile.username} (${profile.role})` : t('anonymous');
  $('login').hidden = Boolean(profile.username);
  $('logout').hidden = !profile.username;
  // A role sees only its tools.
  for (const el of document.querySelectorAll('[data-tool]')) el.hidden = !profile.tools[el.dataset.tool];
}

async function start() {
  applyText();
  token();  // takes a #token= handed over by another page
  // The profile and the style at once (the style depends on the caller, not on the profile).
  const [profile, style] = await Promise.all([get('/viewer/profile'), loadStyle({ events: eventsCql(app.filters) })]);
  app.profile = profile;
  session(profile);
  townshipLabels(style, profile.township_labels);
  const map = app.map = createMap('map', style, profile.home);
  window.__map = map;
  map.on('error', (e) => { $('status').textContent = String((e.error && e.error.message) || e); });
  const painted = new Promise((ok) => map.once('idle', ok));
  map.once('idle', () => { window.__ready = true; window.__firstIdle = performance.now(); });
  map.on('load', () => buildTree(map, profile));
  setupIdentify(map, app);
  setupSearch(app);
  // The map first: the panels' lists, the filter form and the live stream ask the server only once the first
  // view is drawn (on a busy server they would otherwise queue in front of its tiles).
  await painted;
  await setupFilters(app);
  if (profile.tools.patrols) setupReplay(app).catch((err) => { $('status').textContent = String(err.message || err); });
  const heat = ['events', 'alarms'].filter((id) => profile.layers.some((l) => l.id === id));
  if (heat.length) setupHeat(app, heat);
  if (profile.tools.events) await setupEvents(app);
  if (profile.tools.alarms) await setupAlarms(app);
  const live = ['events', 'alarms', 'positions'].filter((id) => profile.tools[id] || (id === 'positions'
    && profile.layers.some((l) => l.id === 'positions')));
  let moved = null;
  if (live.length) {
    let pending = null;
    app.refreshLive = () => setFilteredTiles(map, 'events', eventsCql(app.filters));
    follow(live, (change) => {
      window.__lastChange = change;
      if (change.layer === 'alarms') { app.alarmArrived(change); app.refreshAlarms(); return; }
      if (change.layer === 'positions') {  // people move often: at most one reload a second
        if (!moved) moved = setTimeout(() => { moved = null; setFilteredTiles(map, 'positions', ''); }, 1000);
        return;
      }
      clearTimeout(pending);  // a burst of event changes reloads the list and the tiles once
      pending = setTimeout(() => { app.refreshEvents(); app.refreshLive(); }, 300);
    }, () => {
      if (app.refreshEvents) { app.refreshEvents(); app.refreshLive(); }
      if (app.refreshAlarms) app.refreshAlarms();
      setFilteredTiles(map, 'positions', '');
    });
  }
}

$('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  try {
    await login(form.get('username'), form.get('password'));
    // A new person starts on their own home extent, not where the previous view was.
    history.replaceState(null, '', window.location.pathname);
    window.location.reload();
  } catch (err) {
    $('status').textContent = `${t('loginFailed')}: ${err.message}`;
  }
});
$('logout').addEventListener('click', async () => {
  await logout();
  history.replaceState(null, '', window.location.pathname);
  window.location.reload();
});
$('lang').addEventListener('click', () => toggleLang());
for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => app.showTab(b.dataset.tab));
$('view3d').addEventListener('click', () => {
  const map = app.map;
  const tilted = map.getPitch() > 10;
  map.easeTo({ pitch: tilted ? 0 : 60, bearing: tilted ? 0 : -20, zoom: tilted ? map.getZoom() : Math.max(map.getZoom(), 15) });
});

$('globe3d').addEventListener('click', async () => {
  const shown = await toggleGlobe(app);
  $('globe3d').textContent = shown ? t('view2dBack') : t('whiteModel');
});

start().catch((err) => { console.error(err); $('status').textContent = String(err.message || err); window.__ready = 'error'; });

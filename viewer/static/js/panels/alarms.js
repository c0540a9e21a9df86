// Live alarms: the list of raised and acknowledged alarms (what was measured, where), a pulsing marker for each
// new one as /stream brings it, a sound and a flash for critical ones; acknowledge and turn into an event.
import { get, post, query } from '../api.js';
import { t, valueName, onLang } from '../i18n.js';
import { maplibregl } from '../map.js';

const LIVE = "status IN ('raised','acknowledged')";

function describe(p) {
  if (p.message) return p.message;
  const what = [p.site_kind, p.metric].filter(Boolean).map(valueName).join(' ');
  return `${what} ${p.value ?? ''}${p.threshold != null ? ` / ${p.threshold}` : ''}`.trim() || valueName(p.alarm_kind);
}

// A short two-tone beep made in the browser (no sound file to fetch).
function beep() {
  try {
    const ctx = new AudioContext();
    for (const [i, f] of [880, 660].entries()) {
      const osc = ctx.createOscillator();
      osc.frequency.value = f;
      osc.connect(ctx.destination);
      osc.start(ctx.currentTime + i * 0.18);
      osc.stop(ctx.currentTime + i * 0.18 + 0.15);
    }
  } catch { /* no audio device: the flash still shows */ }
}

export function setupAlarms(app) {
  const panel = document.getElementById('alarms');
  const list = panel.querySelector('.queue');
  const markers = new Map();

  async function refresh() {
    let page;
    try {
      page = await get(`/collections/alarms/items?${query({ filter: LIVE, sortby: '-raised_at', limit: 50 })}`);
    } catch (err) { list.textContent = String(err.message || err); return; }
    panel.querySelector('.count').textContent = page.numberMatched ?? page.features.length;
    list.replaceChildren();
    if (!page.features.length) { list.textContent = t('noResults'); return; }
    for (const f of page.features) {
      const p = f.properties;
      const li = document.createElement('li');
      li.dataset.id = f.id;
      li.className = `level-${p.level} status-${p.status}`;
      li.innerHTML = '<b></b><br><small></small><div class="actions"></div>';
      li.querySelector('b').textContent = describe(p);
      li.querySelector('small').textContent = `${valueName(p.level)} · ${valueName(p.status)} · ${p.raised_at}`;
      li.addEventListener('click', (ev) => {
        if (ev.target.tagName === 'BUTTON') return;
        if (f.geometry) app.map.flyTo({ center: f.geometry.coordinates, zoom: Math.max(app.map.getZoom(), 15) });
      });
      if (app.profile.tools.alarm_actions) {
        const actions = li.querySelector('.actions');
        for (const action of (p.status === 'raised' ? ['ack', 'to-event'] : ['to-event', 'resolve'])) {
          if (action === 'to-event' && p.event_id) continue;
          const b = document.createElement('button');
          b.dataset.action = action;
          b.textContent = t(`alarm_${action}`);
          b.addEventListener('click', () => act(f.id, action));
          actions.append(b);
        }
      }
      list.append(li);
    }
  }

  async function act(id, action) {
    try {
      await post(`/alarms/${id}/actions/${action}`, {});
      app.toast(`${t(`alarm_${action}`)} · ${t('actionsDone')}`);
    } catch (err) { app.toast(String(err.message || err), true); }
    refresh();
  }

  // A new alarm: a pulsing marker where it was raised; critical ones also sound and flash the screen.
  function arrived(change) {
    if (change.op !== 'insert' || !change.bbox) return;
    const el = document.createElement('div');
    el.className = `pulse level-${(change.properties || {}).level || 'warning'}`;
    const marker = new maplibregl.Marker({ element: el }).setLngLat([change.bbox[0], change.bbox[1]]).addTo(app.map);
    markers.set(change.id, marker);
    setTimeout(() => { marker.remove(); markers.delete(change.id); }, 60000);
    if ((change.properties || {}).level === 'critical') {
      beep();
      document.body.classList.add('flash');
      setTimeout(() => document.body.classList.remove('flash'), 3000);
    }
    window.__lastAlarm = { ...change, receivedAt: Date.now() };
  }

  onLang(refresh);
  app.refreshAlarms = refresh;
  app.alarmArrived = arrived;
  return refresh();
}

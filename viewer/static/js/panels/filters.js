// Filters: time window (default: everything still open, plus the last 7 days), status, type, source and -- for
// those who see every township -- townships. One CQL2 text, sent with the event tiles and the event lists alike.
import { get } from '../api.js';
import { t, valueName, onLang } from '../i18n.js';

export const OPEN = ['reported', 'accepted', 'dispatched', 'in_progress', 'handled', 'verified'];
const STATUSES = [...OPEN, 'closed', 'rejected', 'merged'];
const SOURCES = ['grid_worker', 'citizen', 'sensor', 'hotline', 'inspection'];
const quote = (v) => `'${String(v).replace(/'/g, "''")}'`;

export function defaultState() {
  return { days: 7, open: true, statuses: [], type: '', source: '', townships: [] };
}

// The window starts on the hour, so every page asking within that hour shares the server's cached tiles.
function since(days) {
  const d = new Date(Date.now() - days * 86400000);
  d.setUTCMinutes(0, 0, 0);
  return d.toISOString().replace('.000Z', 'Z');
}

export function eventsCql(state) {
  const parts = [];
  if (state.days > 0) {
    const recent = `reported_at >= TIMESTAMP('${since(state.days)}')`;
    parts.push(state.open ? `(${recent} OR status IN (${OPEN.map(quote).join(',')}))` : recent);
  }
  if (state.statuses.length) parts.push(`status IN (${state.statuses.map(quote).join(',')})`);
  if (state.type) parts.push(`type = ${quote(state.type)}`);
  if (state.source) parts.push(`source = ${quote(state.source)}`);
  if (state.townships.length) parts.push(`township_code IN (${state.townships.map(quote).join(',')})`);
  return parts.join(' AND ');
}

export async function setupFilters(app) {
  const form = document.getElementById('filters');
  const state = app.filters;
  let types = [];
  try { types = (await get('/event-types')).event_types.filter((x) => !x.retired); } catch { /* public */ }
  app.typeName = (code) => { const x = types.find((y) => y.code === code); return (x && (x.name_zh || x.name)) || code; };
  const render = () => {
    const townships = app.profile.township_list || [];
    form.innerHTML = `
      <label>${t('lastDays')} <input type="number" name="days" min="0" max="3650" value="${state.days}"></label>
      <label><input type="checkbox" name="open" ${state.open ? 'checked' : ''}> ${t('openToo')}</label>
      <fieldset><legend>${t('status')}</legend>${STATUSES.map((s) => `<label><input type="checkbox" name="status" value="${s}" ${state.statuses.includes(s) ? 'checked' : ''}> ${valueName(s)}</label>`).join('')}</fieldset>
      <label>${t('type')} <select name="type"><option value="">${t('all')}</option>${types.map((x) => `<option value="${x.code}" ${state.type === x.code ? 'selected' : ''}>${x.name_zh || x.name || x.code}</option>`).join('')}</select></label>
      <label>${t('source')} <select name="source"><option value="">${t('all')}</option>${SOURCES.map((s) => `<option value="${s}" ${state.source === s ? 'selected' : ''}>${valueName(s)}</option>`).join('')}</select></label>
      ${app.profile.tools.filter_townships ? `<fieldset><legend>${t('townships')}</legend>${townships.map((tw) => `<label><input type="checkbox" name="township" value="${tw.code}" ${state.townships.includes(tw.code) ? 'checked' : ''}> ${tw.name_zh || tw.name}</label>`).join('')}</fieldset>` : ''}
      <p><button type="submit">${t('apply')}</button> <button type="button" name="reset">${t('reset')}</button></p>`;
    form.querySelector('[name=reset]').addEventListener('click', () => { Object.assign(state, defaultState()); render(); app.applyFilters(); });
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    state.days = Math.max(0, Number(data.get('days') || 0));
    state.open = data.get('open') === 'on';
    state.statuses = data.getAll('status');
    state.type = data.get('type') || '';
    state.source = data.get('source') || '';
    state.townships = data.getAll('township');
    app.applyFilters();
  });
  render();
  onLang(render);
}

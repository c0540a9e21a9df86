// Search: one box over /search (townships, villages, grids, buildings, temples, sites, event codes, people),
// under the caller's scope; picking a result flies the map there and shows the feature.
import { get, query } from '../api.js';
import { layerName, t } from '../i18n.js';
import { fitBbox } from '../map.js';

export function setupSearch(app) {
  const input = document.getElementById('search');
  const results = document.getElementById('results');
  let timer = null;
  let seq = 0;
  const run = async () => {
    const q = input.value.trim();
    if (!q) { results.hidden = true; return; }
    const mine = ++seq;
    let answer;
    try { answer = await get(`/search?${query({ q, limit: 20 })}`); } catch (err) { answer = { results: [], error: err.message }; }
    if (mine !== seq) return;  // a newer search is under way
    results.replaceChildren();
    results.hidden = false;
    if (!answer.results.length) { results.textContent = answer.error || t('noResults'); return; }
    for (const r of answer.results) {
      const li = document.createElement('li');
      li.innerHTML = '<b></b> <small></small>';
      li.querySelector('b').textContent = r.label;
      li.querySelector('small').textContent = `${layerName(r.layer)}${r.detail ? ' · ' + r.detail : ''}`;
      li.addEventListener('click', () => {
        results.hidden = true;
        fitBbox(app.map, r.bbox);
        if (r.layer === 'events') app.openEvent(r.id);
        else app.identify(r.layer, r.id);
      });
      results.append(li);
    }
  };
  input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(run, 250); });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') { ev.preventDefault(); clearTimeout(timer); run().then(() => { const first = results.querySelector('li'); if (first) first.click(); }); }
    if (ev.key === 'Escape') results.hidden = true;
  });
}

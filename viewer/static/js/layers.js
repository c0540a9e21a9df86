// The layer tree: every layer of the style grouped by its source layer, with a legend swatch (and the values of
// a match colour), labels switched with their layer; base maps as a choice of one.
import { layerName, t, valueName, onLang } from './i18n.js';

function colours(paint) {
  const c = paint['fill-extrusion-color'] || paint['fill-color'] || paint['line-color'] || paint['circle-color'];
  if (typeof c === 'string') return { main: c, entries: [] };
  // ['case', ..., default] (clusters) or ['match', ['get', p], v1, c1, ..., default]
  const find = (expr) => {
    if (!Array.isArray(expr)) return null;
    if (expr[0] === 'match') return expr;
    for (const part of expr) { const m = find(part); if (m) return m; }
    return null;
  };
  const match = find(c);
  if (!match) return { main: '#888', entries: [] };
  const entries = [];
  for (let i = 2; i < match.length - 1; i += 2) entries.push([match[i], match[i + 1]]);
  return { main: match[match.length - 1], entries };
}

export function buildTree(map, profile) {
  const style = map.getStyle();
  const basemaps = style.layers.filter((l) => l.metadata && l.metadata['onemap:group'] === 'basemap');
  const groups = new Map();
  for (const layer of style.layers) {
    const group = layer['source-layer'] || (layer.metadata && layer.metadata['onemap:layer']);
    if (!group) continue;
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(layer);
  }
  const titles = Object.fromEntries((profile.layers || []).map((l) => [l.id, l.title]));
  const render = () => {
    const base = document.getElementById('basemaps');
    base.replaceChildren();
    for (const layer of [...basemaps, { id: 'none' }]) {
      const label = document.createElement('label');
      const visible = layer.id === 'none' ? basemaps.every((b) => map.getLayoutProperty(b.id, 'visibility') === 'none')
        : map.getLayoutProperty(layer.id, 'visibility') !== 'none';
      label.innerHTML = `<input type="radio" name="basemap" value="${layer.id}" ${visible ? 'checked' : ''}> ${t(layer.id)}`;
      label.querySelector('input').addEventListener('change', () => {
        for (const b of basemaps) map.setLayoutProperty(b.id, 'visibility', b.id === layer.id ? 'visible' : 'none');
      });
      base.append(label);
    }
    const list = document.getElementById('layers');
    list.replaceChildren();
    for (const [group, members] of groups) {
      const main = members.find((l) => l.type !== 'symbol') || members[0];
      const { main: colour, entries } = colours(main.paint || {});
      const item = document.createElement('li');
      item.dataset.layer = group;
      const checked = members.some((l) => map.getLayoutProperty(l.id, 'visibility') !== 'none');
      item.innerHTML = `<label><input type="checkbox" ${checked ? 'checked' : ''}><span class="swatch ${main.type}"></span>`
        + `<span class="name"></span></label><ul class="legend"></ul>`;
      item.querySelector('.name').textContent = layerName(group, titles[group]);
      item.querySelector('.swatch').style.background = colour;
      for (const [value, c] of entries) {
        const li = document.createElement('li');
        li.innerHTML = '<span class="swatch small"></span><span></span>';
        li.firstChild.style.background = c;
        li.lastChild.textContent = valueName(value);
        item.querySelector('.legend').append(li);
      }
      if (group === 'events') {  // what the clusters' colours say (map.js clusterPaint)
        for (const [key, c] of [['overdue', '#c0392b'], ['openCount', '#e67e22']]) {
          const li = document.createElement('li');
          li.innerHTML = '<span class="swatch small circle"></span><span></span>';
          li.firstChild.style.background = c;
          li.lastChild.textContent = `${t('cluster')} · ${t(key)}`;
          item.querySelector('.legend').append(li);
        }
      }
      item.querySelector('input').addEventListener('change', (ev) => {
        for (const l of members) map.setLayoutProperty(l.id, 'visibility', ev.target.checked ? 'visible' : 'none');
      });
      list.append(item);
    }
  };
  render();
  onLang(render);
}

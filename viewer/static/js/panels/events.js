// The events panel: the queue (new, overdue, open, mine) under the page's filters, an event's detail and
// timeline, and the dispatch actions this person may do now as buttons (POST /events/{id}/actions/{action}).
import { get, post, query } from '../api.js';
import { t, valueName, onLang } from '../i18n.js';
import { OPEN, eventsCql } from './filters.js';

const QUEUES = {
  new: () => "status = 'reported'",
  overdue: () => "due_state = 'overdue'",
  open: () => `status IN (${OPEN.map((s) => `'${s}'`).join(',')})`,
  mine: (me) => `assignee = '${String(me).replace(/'/g, "''")}'`,
};

export function allowedActions(profile, event) {
  const status = event.properties.status;
  const me = profile.username;
  const dispatcher = profile.tools.dispatch;  // the server checks the township again on every action
  const assignee = me && event.properties.assignee === me;
  return profile.transitions.filter((tr) => tr.sources.includes(status)
    && ({ dispatcher, assignee, either: dispatcher || assignee })[tr.by]).map((tr) => tr.name);
}

export function setupEvents(app) {
  const panel = document.getElementById('events');
  const list = panel.querySelector('.queue');
  const detail = panel.querySelector('.detail');
  let queue = 'new';

  const renderTabs = () => {
    const tabs = panel.querySelector('.tabs');
    tabs.replaceChildren();
    for (const q of ['new', 'overdue', 'open', ...(app.profile.username ? ['mine'] : [])]) {
      const b = document.createElement('button');
      b.textContent = t({ new: 'queueNew', overdue: 'queueOverdue', open: 'queueOpen', mine: 'queueMine' }[q]);
      b.className = q === queue ? 'active' : '';
      b.dataset.queue = q;
      b.addEventListener('click', () => { queue = q; renderTabs(); refresh(); });
      tabs.append(b);
    }
  };

  async function refresh() {
    const cql = [eventsCql(app.filters), QUEUES[queue](app.profile.username)].filter(Boolean).join(' AND ');
    let page;
    try {
      page = await get(`/collections/events/items?${query({ filter: cql, sortby: '-reported_at', limit: 50 })}`);
    } catch (err) { list.textContent = String(err.message || err); return; }
    list.replaceChildren();
    panel.querySelector('.count').textContent = page.numberMatched ?? page.features.length;
    if (!page.features.length) { list.textContent = t('noResults'); return; }
    for (const f of page.features) {
      const li = document.createElement('li');
      li.dataset.id = f.id;
      li.className = `status-${f.properties.status} ${f.properties.due_state === 'overdue' ? 'overdue' : ''}`;
      li.innerHTML = '<b></b> <span class="st"></span><br><small></small>';
      li.querySelector('b').textContent = f.properties.title;
      li.querySelector('.st').textContent = valueName(f.properties.status);
      li.querySelector('small').textContent = `${f.properties.event_code || ''} · ${f.properties.reported_at}`;
      li.addEventListener('click', () => open(f.id, true));
      list.append(li);
    }
  }

  async function open(id, fly) {
    app.showTab('events');
    const event = await get(`/collections/events/items/${id}`);
    if (fly) app.map.flyTo({ center: event.geometry.coordinates, zoom: Math.max(app.map.getZoom(), 16) });
    const { timeline } = await get(`/events/${id}/timeline`);
    detail.hidden = false;
    detail.dataset.id = id;
    const p = event.properties;
    detail.innerHTML = `<h3></h3><p class="meta"></p><p class="desc"></p><div class="actions"></div>
      <label class="note">${t('note')} <input name="note"></label><h4>${t('timeline')}</h4><ol class="timeline"></ol>`;
    detail.querySelector('h3').textContent = `${p.event_code || id} · ${p.title}`;
    detail.querySelector('.meta').textContent = `${valueName(p.status)} · ${app.typeName ? app.typeName(p.type) : p.type} · ${valueName(p.priority)} · `
      + `${t('reportedAt')} ${p.reported_at}${p.deadline ? ` · ${t('deadline')} ${p.deadline}` : ''}`
      + `${p.assignee ? ` · ${t('assignee')} ${p.assignee}` : ''}`;
    detail.querySelector('.desc').textContent = p.description || '';
    const actions = detail.querySelector('.actions');
    for (const name of allowedActions(app.profile, event)) {
      const b = document.createElement('button');
      b.textContent = valueName(name);
      b.dataset.action = name;
      b.addEventListener('click', () => act(id, name));
      actions.append(b);
    }
    if (!actions.childNodes.length) detail.querySelector('.note').hidden = true;
    if (actions.querySelector('[data-action="dispatch"]')) chooser(p, actions);
    const ol = detail.querySelector('.timeline');
    for (const row of timeline) {
      const li = document.createElement('li');
      li.textContent = `${row.at || row.created_at || ''} ${row.actor || ''} ${valueName(row.action)}`
        + `${row.to_status ? ` → ${valueName(row.to_status)}` : ''}${row.note ? ` · ${row.note}` : ''}`;
      ol.append(li);
    }
  }

  // Whom to dispatch to: the event's grid team and bound departments (GET /grids/{code}/bindings), its
  // current assignee, or someone else typed in.
  async function chooser(p, actions) {
    const label = document.createElement('label');
    label.className = 'assign';
    label.innerHTML = `${t('assignee')} <select name="assignee"></select> <input name="assigneeOther" hidden>`;
    actions.before(label);
    const select = label.querySelector('select');
    const other = label.querySelector('input');
    other.placeholder = t('otherAssignee');
    let team = [];
    if (p.grid_code) {
      try { team = (await get(`/grids/${encodeURIComponent(p.grid_code)}/bindings`)).bindings; } catch { team = []; }
    }
    const ORDER = ['leader', 'full_time', 'part_time', 'instructor', 'department'];
    team = [...team].sort((a, b) => ORDER.indexOf(a.role) - ORDER.indexOf(b.role) || a.username.localeCompare(b.username));
    const group = document.createElement('optgroup');
    group.label = `${t('team')} ${p.grid_code || ''}`;
    for (const b of team) {
      const o = document.createElement('option');
      o.value = b.username;
      o.textContent = `${t(`role_${b.role}`)} · ${b.username}`;
      group.append(o);
    }
    if (!team.length) {
      const o = document.createElement('option');
      o.disabled = true;
      o.textContent = t('noTeam');
      group.append(o);
    }
    select.append(group);
    if (p.assignee && !team.some((b) => b.username === p.assignee)) select.append(new Option(p.assignee, p.assignee));
    select.append(new Option(t('otherAssignee'), '__other'));
    select.value = team.length ? team[0].username : (p.assignee || '__other');
    const sync = () => { other.hidden = select.value !== '__other'; };
    select.addEventListener('change', sync);
    sync();
    label.dataset.ready = 'true';
  }

  async function act(id, name) {
    const note = detail.querySelector('[name=note]').value;
    const body = note ? { note } : {};
    if (name === 'dispatch') {
      const select = detail.querySelector('[name=assignee]');
      const assignee = select && (select.value === '__other' ? detail.querySelector('[name=assigneeOther]').value.trim()
        : select.value);
      if (!assignee) { app.toast(t('chooseAssignee'), true); return; }
      body.assignee = assignee;
    }
    try {
      await post(`/events/${id}/actions/${name}`, body);
      app.toast(`${valueName(name)} · ${t('actionsDone')}`);
    } catch (err) {
      app.toast(String(err.message || err), true);
    }
    await open(id, false);
    refresh();
    app.refreshLive();
  }

  renderTabs();
  onLang(() => { renderTabs(); refresh(); });
  app.openEvent = (id) => open(id, false);
  app.refreshEvents = refresh;
  return refresh();
}

// Live: /stream through EventSource with a one-minute ticket (POST /stream/tickets: EventSource sends no
// headers); reconnects resume from the last seq the browser saw (Last-Event-ID), so nothing is missed.
import { post } from './api.js';

export function follow(layers, onChange, onReset) {
  let source = null;
  let closed = false;
  let last = null;
  const open = async () => {
    if (closed) return;
    let ticket;
    try { ticket = (await post('/stream/tickets')).ticket; } catch { setTimeout(open, 5000); return; }
    const params = new URLSearchParams({ ticket, layers: layers.join(',') });
    if (last) params.set('lastEventId', last);
    source = new EventSource(`/stream?${params}`);
    source.addEventListener('change', (ev) => { last = ev.lastEventId || last; onChange(JSON.parse(ev.data)); });
    source.addEventListener('reset', () => onReset());
    source.addEventListener('ready', () => { window.__streamReady = true; });
    source.addEventListener('end', () => { source.close(); setTimeout(open, 1000); });
    source.onerror = () => { source.close(); setTimeout(open, 2000); };  // the ticket is spent: ask again
  };
  open();
  return () => { closed = true; if (source) source.close(); };
}

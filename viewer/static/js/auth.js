// One session for every page: the bearer token in localStorage['onemap.token'] (the 3D page reads the same key),
// plus the HTML pages' session cookie (POST /login), so the OGC pages know the same person. Logout ends both.
const KEY = 'onemap.token';

export function token() {
  const fromHash = new URLSearchParams(window.location.hash.slice(1)).get('token');
  if (fromHash) {
    localStorage.setItem(KEY, fromHash);
    const params = new URLSearchParams(window.location.hash.slice(1));
    params.delete('token');
    history.replaceState(null, '', window.location.pathname + window.location.search + (params.toString() ? '#' + params : ''));
  }
  const value = localStorage.getItem(KEY);
  if (!value) return null;
  try {
    const claims = JSON.parse(atob(value.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    if (claims.exp && claims.exp * 1000 < Date.now()) { localStorage.removeItem(KEY); return null; }
  } catch { localStorage.removeItem(KEY); return null; }
  return value;
}

export function forget() { localStorage.removeItem(KEY); }

export async function login(username, password) {
  const body = new URLSearchParams({ username, password });
  const res = await fetch('/auth/token', { method: 'POST', body });
  if (!res.ok) {
    let detail = '';
    try { detail = (await res.json()).detail || ''; } catch { /* not JSON */ }
    throw new Error(detail || `HTTP ${res.status}`);
  }
  localStorage.setItem(KEY, (await res.json()).access_token);
  // The HTML pages' cookie for the same person (reads only; writes always carry the bearer token).
  await fetch('/login', { method: 'POST', body: new URLSearchParams({ username, password, next: '/viewer/' }),
    redirect: 'manual' }).catch(() => null);
}

export async function logout() {
  forget();
  await fetch('/logout', { method: 'POST', redirect: 'manual' }).catch(() => null);
}

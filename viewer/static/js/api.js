// The API client: our own origin only, the bearer token on every call, problem+json turned into errors.
import { forget, token } from './auth.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function headers(extra = {}) {
  const tok = token();
  return tok ? { Authorization: `Bearer ${tok}`, ...extra } : { ...extra };
}

export async function request(path, { method = 'GET', body, json } = {}) {
  const init = { method, headers: headers(json !== undefined ? { 'Content-Type': 'application/json' } : {}) };
  if (json !== undefined) init.body = JSON.stringify(json);
  else if (body !== undefined) init.body = body;
  const res = await fetch(path, init);
  if (res.status === 401 && token()) { forget(); }
  if (!res.ok) {
    let problem = null;
    try { problem = await res.json(); } catch { /* no body */ }
    throw new ApiError(res.status, problem);
  }
  if (res.status === 204) return null;
  return res.json();
}

export const get = (path) => request(path);
export const post = (path, json) => request(path, { method: 'POST', json });

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  return q.toString();
}

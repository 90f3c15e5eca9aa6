// REST client: every call carries the login token as `Authorization: Bearer`; errors come
// back as ApiError with the server's `{error: {code, message}}`.

export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/**
 * getToken(): the current JWT or null. onUnauthorized(code): called on a 401 (the session
 * expired or was revoked).
 */
export function createApi(getToken, onUnauthorized) {
  async function send(method, path, body, { raw = false } = {}) {
    const headers = { Accept: 'application/json' };
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch {
      throw new ApiError(0, 'NETWORK', 'The appliance cannot be reached. Check the network.');
    }
    if (raw && res.ok) return res;
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (!res.ok) {
      const err = data && data.error;
      if (res.status === 401 && token) onUnauthorized(err && err.code);
      throw new ApiError(res.status, (err && err.code) || `HTTP_${res.status}`,
        (err && err.message) || `${res.status} ${res.statusText}`, data);
    }
    return data;
  }
  return {
    get: (path) => send('GET', path),
    post: (path, body = {}) => send('POST', path, body),
    put: (path, body) => send('PUT', path, body),
    patch: (path, body) => send('PATCH', path, body),
    del: (path) => send('DELETE', path),
    /** A successful GET as a raw Response (downloads). */
    raw: (path) => send('GET', path, undefined, { raw: true }),
  };
}

/** `/api/orders/x` with every segment escaped. */
export function path(...segments) {
  return segments.map((s, i) => (i === 0 ? s : encodeURIComponent(String(s)))).join('/');
}

/** Login does not carry a token. */
export async function login(email, password) {
  let res;
  try {
    res = await fetch('/auth/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ email, password }),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The appliance cannot be reached. Check the network.');
  }
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) {
    const err = data && data.error;
    throw new ApiError(res.status, (err && err.code) || `HTTP_${res.status}`, (err && err.message) || res.statusText);
  }
  return data;
}

/** The claims of a JWT (not verified: the server does that), or null. */
export function claims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(part + '='.repeat((4 - (part.length % 4)) % 4));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

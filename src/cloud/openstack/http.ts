/**
 * A small JSON-over-HTTP client on node:http/https (so a cloud's own CA file and `verify: false`
 * from clouds.yaml work, which the global fetch cannot do per request). No proxies are used.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { CloudError, redact } from '../errors.js';

export interface HttpOptions {
  /** PEM CA bundle for TLS (clouds.yaml `cacert`). */
  ca?: Buffer;
  /** clouds.yaml `verify: false` */
  insecure?: boolean;
  /** per-request timeout, ms */
  timeoutMs: number;
  /** debug lines (method, URL, status only — never headers or bodies) */
  debug?: (line: string) => void;
  /** use HTTPS_PROXY / HTTP_PROXY / NO_PROXY from this environment (the metadata service never does) */
  proxyEnv?: NodeJS.ProcessEnv;
}

/** The proxy URL for a target, as curl and python-requests read the variables; undefined: go direct. */
export function proxyFor(target: URL, env: NodeJS.ProcessEnv): URL | undefined {
  const get = (k: string) => env[k] ?? env[k.toUpperCase()];
  const noProxy = (get('no_proxy') ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const host = target.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  for (const n of noProxy) {
    if (n === '*') return undefined;
    const bare = n.replace(/:\d+$/, '').replace(/^\*?\./, '');
    if (host === bare || host.endsWith('.' + bare)) return undefined;
  }
  const p = target.protocol === 'https:' ? get('https_proxy') : get('http_proxy');
  if (!p) return undefined;
  try {
    return new URL(/^[a-z]+:\/\//i.test(p) ? p : `http://${p}`);
  } catch {
    return undefined;
  }
}

function proxyAuth(proxy: URL): Record<string, string> {
  if (!proxy.username) return {};
  const cred = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'Proxy-Authorization': `Basic ${Buffer.from(cred).toString('base64')}` };
}

/** An HTTPS connection through an HTTP proxy's CONNECT tunnel. */
function tunnel(proxy: URL, target: URL, opts: HttpOptions, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const port = target.port || '443';
    const req = http.request({
      host: proxy.hostname,
      port: proxy.port || 80,
      method: 'CONNECT',
      path: `${target.hostname}:${port}`,
      headers: { Host: `${target.hostname}:${port}`, ...proxyAuth(proxy) },
      timeout: timeoutMs,
    });
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(Object.assign(new Error(`proxy ${proxy.host} refused the tunnel (${res.statusCode})`), { code: 'EPROXY' }));
        return;
      }
      const t = tls.connect({ socket, ...(net.isIP(target.hostname) ? {} : { servername: target.hostname }), host: target.hostname, ca: opts.ca, rejectUnauthorized: !opts.insecure });
      t.once('secureConnect', () => resolve(t));
      t.once('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Content-Type for the body (default application/json) */
  contentType?: string;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  url: string;
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function parseJson<T>(res: HttpResponse): T {
  try {
    return JSON.parse(res.text) as T;
  } catch {
    throw new CloudError('failed', `${res.url} answered ${res.status} with a body that is not JSON`, res.status);
  }
}

/** The reason of a network failure, in a few words. */
function netReason(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    case 'ETIMEDOUT':
    case 'ESOCKETTIMEDOUT':
      return 'timed out';
    case 'ECONNRESET':
      return 'connection reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    default:
      return e.code ? `${e.code}: ${e.message}` : e.message;
  }
}

export function httpRequest(req: HttpRequest, opts: HttpOptions): Promise<HttpResponse> {
  const url = new URL(req.url);
  const isHttps = url.protocol === 'https:';
  if (!isHttps && url.protocol !== 'http:') {
    return Promise.reject(new CloudError('config', `unsupported URL scheme in ${url.origin}`));
  }
  let payload: Buffer | undefined;
  const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': 'lifeboat', ...req.headers };
  if (req.body !== undefined) {
    payload = Buffer.from(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
    headers['Content-Type'] = req.contentType ?? 'application/json';
    headers['Content-Length'] = String(payload.length);
  }
  const timeout = req.timeoutMs ?? opts.timeoutMs;
  const where = `${url.origin}${url.pathname}`;
  const proxy = opts.proxyEnv ? proxyFor(url, opts.proxyEnv) : undefined;
  const fail = (e: NodeJS.ErrnoException) =>
    new CloudError('unreachable', redact(`cannot reach ${where}${proxy ? ` through proxy ${proxy.host}` : ''}: ${netReason(e)}`));
  if (proxy && isHttps) {
    return tunnel(proxy, url, opts, timeout).then(
      // no agent: only then does the request use createConnection (the tunnelled TLS socket)
      (socket) => send(https, url, { method: req.method, headers, createConnection: () => socket }, payload, timeout, where, opts, req.url, fail),
      (e: NodeJS.ErrnoException) => Promise.reject(fail(e)),
    );
  }
  if (proxy) {
    // plain HTTP through a proxy: the absolute URL as the request target
    return send(http, url, { host: proxy.hostname, port: proxy.port || 80, path: url.href, method: req.method, headers: { ...headers, Host: url.host, ...proxyAuth(proxy) }, agent: false }, payload, timeout, where, opts, req.url, fail);
  }
  const mod = isHttps ? https : http;
  return send(mod, url, { method: req.method, headers, agent: false, ...(isHttps ? { ca: opts.ca, rejectUnauthorized: !opts.insecure } : {}) }, payload, timeout, where, opts, req.url, fail);
}

function send(
  mod: typeof http | typeof https,
  url: URL,
  options: https.RequestOptions,
  payload: Buffer | undefined,
  timeout: number,
  where: string,
  opts: HttpOptions,
  reqUrl: string,
  fail: (e: NodeJS.ErrnoException) => CloudError,
): Promise<HttpResponse> {
  const method = options.method ?? 'GET';
  return new Promise<HttpResponse>((resolve, reject) => {
    const r = options.host ? mod.request(options, onResponse) : mod.request(url, options, onResponse);
    function onResponse(res: http.IncomingMessage): void {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => reject(fail(e as NodeJS.ErrnoException)));
      res.on('end', () => {
        clearTimeout(timer);
        opts.debug?.(`${method} ${where} → ${res.statusCode}`);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), url: reqUrl });
      });
    }
    const timer = setTimeout(() => {
      r.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    }, timeout);
    r.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(fail(e));
    });
    if (payload) r.write(payload);
    r.end();
  });
}

/**
 * The message inside an OpenStack error body: Nova `{"<fault>": {"code", "message"}}`, Keystone
 * `{"error": {"code", "title", "message"}}`, Cinder like Nova, Glance's plain text/HTML `<h1>` pages.
 */
export function errorMessage(res: HttpResponse): string {
  const t = res.text.trim();
  try {
    const j = JSON.parse(t) as Record<string, unknown>;
    if (j && typeof j === 'object') {
      for (const v of Object.values(j)) {
        if (v && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string') {
          return redact(((v as { message: string }).message).replace(/\s+/g, ' ').trim());
        }
      }
      if (typeof j.message === 'string') return redact(j.message);
    }
  } catch {
    // not JSON
  }
  // Glance (webob) error pages: "403 Forbidden\n\nImage ... is protected\n\n"
  const plain = t.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
  return redact(plain.slice(0, 300)) || `HTTP ${res.status}`;
}

/**
 * A small JSON-over-HTTP client on node:http/https (so a cloud's own CA file and `verify: false`
 * from clouds.yaml work, which the global fetch cannot do per request). No proxies are used.
 */
import http from 'node:http';
import https from 'node:https';
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
  const mod = isHttps ? https : http;
  const where = `${url.origin}${url.pathname}`;
  return new Promise<HttpResponse>((resolve, reject) => {
    const r = mod.request(
      url,
      {
        method: req.method,
        headers,
        agent: false,
        ...(isHttps ? { ca: opts.ca, rejectUnauthorized: !opts.insecure } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(new CloudError('unreachable', `${where}: ${netReason(e as NodeJS.ErrnoException)}`)));
        res.on('end', () => {
          clearTimeout(timer);
          opts.debug?.(`${req.method} ${where} → ${res.statusCode}`);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), url: req.url });
        });
      },
    );
    const timer = setTimeout(() => {
      r.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    }, timeout);
    r.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new CloudError('unreachable', redact(`cannot reach ${where}: ${netReason(e)}`)));
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

/**
 * A byte-counting HTTP proxy in front of the S3 server, for the benchmark (issue 4): it forwards
 * every request unchanged (method, path, all headers including Host, so SigV4 signatures stay
 * valid), streams both bodies through without buffering them, and counts per HTTP method:
 * requests, request-body bytes sent to the server ("uploaded") and response-body bytes sent back
 * to the client ("downloaded"). Headers are not counted. Modelled on test/faults/proxy.ts, without
 * faults and without holding bodies in memory.
 *
 * With `tls` it listens on https (and still talks plain http to the server): restic 0.14 (minio-go)
 * sends PUT bodies in signed aws-chunked encoding over plain http, which Swift's s3api rejects
 * (501), and plain single-chunk bodies over https. The counts are payload bytes after TLS.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface MethodTraffic {
  requests: number;
  /** request-body bytes (what the client uploaded) */
  upBytes: number;
  /** response-body bytes (what the client downloaded) */
  downBytes: number;
  /** responses with status >= 400 */
  errors: number;
}

export interface Traffic {
  requests: number;
  upBytes: number;
  downBytes: number;
  errors: number;
  byMethod: Record<string, MethodTraffic>;
}

export interface RequestRecord {
  method: string;
  /** path and query as sent */
  url: string;
  status: number;
  upBytes: number;
  downBytes: number;
  ms: number;
}

export interface CountingProxy {
  url: string;
  /** Called once per finished request, e.g. to write a request log. */
  onRequest: ((r: RequestRecord) => void) | null;
  /** A copy of the counters since start. */
  snapshot(): Traffic;
  close(): Promise<void>;
}

function emptyTraffic(): Traffic {
  return { requests: 0, upBytes: 0, downBytes: 0, errors: 0, byMethod: {} };
}

/** b - a, counter by counter (both from snapshot()). */
export function trafficDelta(a: Traffic, b: Traffic): Traffic {
  const d = emptyTraffic();
  d.requests = b.requests - a.requests;
  d.upBytes = b.upBytes - a.upBytes;
  d.downBytes = b.downBytes - a.downBytes;
  d.errors = b.errors - a.errors;
  for (const [m, t] of Object.entries(b.byMethod)) {
    const o = a.byMethod[m] ?? { requests: 0, upBytes: 0, downBytes: 0, errors: 0 };
    const x = { requests: t.requests - o.requests, upBytes: t.upBytes - o.upBytes, downBytes: t.downBytes - o.downBytes, errors: t.errors - o.errors };
    if (x.requests > 0) d.byMethod[m] = x;
  }
  return d;
}

export async function startCountingProxy(upstream: string, tls?: { key: Buffer; cert: Buffer }): Promise<CountingProxy> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const total = emptyTraffic();
  const per = (method: string): MethodTraffic => (total.byMethod[method] ??= { requests: 0, upBytes: 0, downBytes: 0, errors: 0 });

  let onRequest: ((r: RequestRecord) => void) | null = null;
  const handler: http.RequestListener = (req, res) => {
    const method = req.method ?? 'GET';
    const m = per(method);
    m.requests++;
    total.requests++;
    const rec: RequestRecord = { method, url: req.url ?? '', status: 0, upBytes: 0, downBytes: 0, ms: 0 };
    const t0 = process.hrtime.bigint();
    res.on('close', () => {
      rec.ms = Number(process.hrtime.bigint() - t0) / 1e6;
      onRequest?.(rec);
    });
    req.on('data', (d: Buffer) => {
      m.upBytes += d.length;
      total.upBytes += d.length;
      rec.upBytes += d.length;
    });
    const up = http.request(
      { host: target.hostname, port: target.port, method, path: req.url, headers: req.headers, agent },
      (ures) => {
        const status = ures.statusCode ?? 502;
        rec.status = status;
        if (status >= 400) {
          m.errors++;
          total.errors++;
        }
        res.writeHead(status, ures.statusMessage, ures.rawHeaders);
        ures.on('data', (d: Buffer) => {
          m.downBytes += d.length;
          total.downBytes += d.length;
          rec.downBytes += d.length;
        });
        ures.pipe(res);
        ures.on('error', () => res.destroy());
      },
    );
    up.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('counting proxy: upstream error\n');
      } else res.destroy();
    });
    req.pipe(up);
    req.on('aborted', () => up.destroy());
  };
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    get onRequest() {
      return onRequest;
    },
    set onRequest(f: ((r: RequestRecord) => void) | null) {
      onRequest = f;
    },
    snapshot: () => structuredClone(total),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        agent.destroy();
      }),
  };
}

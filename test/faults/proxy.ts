/**
 * A fault-injecting HTTP proxy in front of the real S3 server (issue 9). It forwards every
 * request unchanged (the Host header too, so SigV4 signatures stay valid) and, on a seeded
 * schedule, answers some of them badly instead:
 *
 *   error500      500 with an S3 InternalError XML body (the request never reaches the server)
 *   slowdown      503 SlowDown with Retry-After (never reaches the server)
 *   reset-before  the connection is reset before the request is forwarded
 *   reset-after   the request is forwarded (a PUT or DELETE takes effect), then the connection
 *                 is reset before the answer: the client must cope with "did it happen?"
 *   stall         forwarded, then the answer is held back past the client's timeout
 *   truncate      forwarded, then the headers and half the body are sent and the connection cut
 *
 * The same seed gives the same sequence of decisions.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mulberry32 } from '../helpers/repo.js';

export type Fault = 'error500' | 'slowdown' | 'reset-before' | 'reset-after' | 'stall' | 'truncate';
export const ALL_FAULTS: Fault[] = ['error500', 'slowdown', 'reset-before', 'reset-after', 'stall', 'truncate'];

/** One request as the proxy saw it: when it arrived, what was done, when the answer was sent. */
export interface ProxiedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  arrived: number;
  fault: Fault | null;
  /** When the (possibly faulty) answer was finished, ms since the epoch; undefined for resets and stalls. */
  answered?: number;
}

export interface FaultProxy {
  url: string;
  /** Every request so far, in arrival order. */
  readonly log: ProxiedRequest[];
  /** When set, decides each request's fault instead of the seeded schedule (null: forward it). */
  decide: ((req: http.IncomingMessage) => Fault | null) | undefined;
  /** When set and it returns an answer, that answer is sent instead of the server's (a store feature the server lacks). */
  answer: ((req: http.IncomingMessage) => { status: number; headers?: Record<string, string>; body: string } | null) | undefined;
  /** The Retry-After value sent with a SlowDown (default "1"). */
  retryAfter: (req: http.IncomingMessage) => string;
  /** Probability in [0, 1] that a request gets a fault. */
  rate: number;
  /** Which faults may be chosen. */
  faults: Fault[];
  /** Faults injected so far, by kind. */
  readonly injected: Record<Fault, number>;
  readonly requests: number;
  close(): Promise<void>;
}


function s3ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-${Date.now()}</RequestId></Error>`;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

interface Upstream {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function forward(target: URL, req: http.IncomingMessage, body: Buffer): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    const up = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    up.on('error', reject);
    up.end(body);
  });
}

export async function startFaultProxy(upstream: string, seed: number, rate = 0.05, stallMs = 60_000): Promise<FaultProxy> {
  const target = new URL(upstream);
  const random = mulberry32(seed);
  const injected = Object.fromEntries(ALL_FAULTS.map((f) => [f, 0])) as Record<Fault, number>;
  const stalled = new Set<http.ServerResponse>();
  let requests = 0;
  const log: ProxiedRequest[] = [];
  const state: { rate: number; faults: Fault[]; decide: ((req: http.IncomingMessage) => Fault | null) | undefined; retryAfter: (req: http.IncomingMessage) => string } = {
    rate,
    faults: ALL_FAULTS.slice(),
    decide: undefined,
    retryAfter: () => '1',
  };
  let answer: FaultProxy['answer'];

  const server = http.createServer((req, res) => {
    requests++;
    // decisions are drawn in arrival order, so one seed gives one schedule
    const roll = random();
    const pick = random();
    const fault: Fault | null = state.decide
      ? state.decide(req)
      : roll < state.rate && state.faults.length > 0 ? state.faults[Math.floor(pick * state.faults.length)]! : null;
    const entry: ProxiedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, arrived: Date.now(), fault };
    log.push(entry);
    res.on('finish', () => (entry.answered = Date.now()));
    void (async () => {
      const body = await readBody(req);
      const fake = answer?.(req);
      if (fake) {
        res.writeHead(fake.status, { 'content-length': String(Buffer.byteLength(fake.body)), ...fake.headers });
        res.end(fake.body);
        return;
      }
      if (fault) injected[fault]++;
      switch (fault) {
        case 'error500': {
          const xml = s3ErrorXml('InternalError', 'We encountered an internal error. Please try again.');
          res.writeHead(500, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
          res.end(xml);
          return;
        }
        case 'slowdown': {
          const xml = s3ErrorXml('SlowDown', 'Please reduce your request rate.');
          res.writeHead(503, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml), 'retry-after': state.retryAfter(req) });
          res.end(xml);
          return;
        }
        case 'reset-before':
          req.socket.destroy();
          return;
        default:
          break;
      }
      let up: Upstream;
      try {
        up = await forward(target, req, body);
      } catch {
        req.socket.destroy();
        return;
      }
      if (fault === 'reset-after') {
        req.socket.destroy();
        return;
      }
      if (fault === 'stall') {
        stalled.add(res);
        setTimeout(() => {
          stalled.delete(res);
          req.socket.destroy();
        }, stallMs).unref();
        return;
      }
      if (fault === 'truncate' && up.body.length > 1) {
        res.writeHead(up.status, { ...up.headers, 'content-length': String(up.body.length) });
        res.write(up.body.subarray(0, Math.floor(up.body.length / 2)), () => req.socket.destroy());
        return;
      }
      if (fault === 'truncate') {
        req.socket.destroy();
        return;
      }
      res.writeHead(up.status, up.headers);
      res.end(up.body);
    })().catch(() => req.socket.destroy());
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get rate() {
      return state.rate;
    },
    set rate(r: number) {
      state.rate = r;
    },
    get faults() {
      return state.faults;
    },
    set faults(f: Fault[]) {
      state.faults = f;
    },
    get decide() {
      return state.decide;
    },
    set decide(d: ((req: http.IncomingMessage) => Fault | null) | undefined) {
      state.decide = d;
    },
    get answer() {
      return answer;
    },
    set answer(a: FaultProxy['answer']) {
      answer = a;
    },
    get retryAfter() {
      return state.retryAfter;
    },
    set retryAfter(f: (req: http.IncomingMessage) => string) {
      state.retryAfter = f;
    },
    log,
    injected,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const r of stalled) r.socket?.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

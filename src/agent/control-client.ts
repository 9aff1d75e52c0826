/**
 * Talking to a running agent over its control socket (status, run now): kept apart from the
 * service so that `lifeboat status` and `doctor` don't load the scheduler and the config schema.
 */
import fs from 'node:fs';
import http from 'node:http';

/** Does something answer on this socket? (A stale socket file from a crashed agent does not.) */
export function socketAnswers(sock: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: sock, path: '/status?probe=0', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** A request to the running agent over its socket; null when no agent answers. */
export function agentRequest(sock: string, method: 'GET' | 'POST', p: string, timeoutMs = 30_000): Promise<{ status: number; body: string } | null> {
  return new Promise((resolve) => {
    if (!fs.existsSync(sock)) return resolve(null);
    const req = http.request({ socketPath: sock, path: p, method, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => {
      req.destroy();
      resolve(null);
    });
    req.end();
  });
}

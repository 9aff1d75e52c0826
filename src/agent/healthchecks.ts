/**
 * healthchecks.io-style pings: URL/start when a job starts, URL when it succeeded, URL/fail (with
 * the log tail as the body) when it failed for good. A ping never fails a job; its URL (a secret of
 * sorts) is never logged.
 */
import type { HealthchecksSection } from '../config/agent.js';

export type PingKind = 'start' | 'success' | 'fail';

export function pingUrl(section: HealthchecksSection | undefined, job: string): string | null {
  if (!section) return null;
  return section.jobs[job] ?? section.default ?? null;
}

export async function ping(
  section: HealthchecksSection | undefined,
  job: string,
  kind: PingKind,
  body: string,
  log: (m: string) => void,
): Promise<void> {
  const base = pingUrl(section, job);
  if (!base) return;
  const url = kind === 'success' ? base : `${base.replace(/\/+$/, '')}/${kind}`;
  try {
    const res = await fetch(url, {
      method: 'POST',
      body: body.length > 100_000 ? body.slice(-100_000) : body,
      headers: { 'content-type': 'text/plain; charset=utf-8', 'user-agent': 'lifeboat-agent' },
      signal: AbortSignal.timeout(section!.timeout),
    });
    await res.arrayBuffer();
    if (!res.ok) log(`job ${job}: healthcheck ${kind} ping answered HTTP ${res.status}`);
  } catch (e) {
    log(`job ${job}: healthcheck ${kind} ping failed: ${(e as Error).message}`);
  }
}

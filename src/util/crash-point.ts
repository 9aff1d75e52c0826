/**
 * Crash points for the crash-safety tests: with LIFEBOAT_CRASH_AT=NAME (or NAME#N for the N-th
 * time the point is reached), the process kills itself with SIGKILL right there — exactly what
 * `kill -9` at that moment would do. Unset (always, outside tests), a crash point does nothing.
 */
const counts = new Map<string, number>();

export function crashPoint(name: string): void {
  const spec = process.env.LIFEBOAT_CRASH_AT;
  if (!spec) return;
  const [want, nth] = spec.split('#');
  if (want !== name) return;
  const n = (counts.get(name) ?? 0) + 1;
  counts.set(name, n);
  if (n >= Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
}

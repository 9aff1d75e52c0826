/** RFC 3339 UTC with nanoseconds from a bigint of ns since the epoch. */
export function rfc3339Nanos(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const frac = (((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0');
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${frac}Z`);
}

/** Now as RFC 3339 UTC (millisecond precision). */
export function nowRfc3339(): string {
  return new Date().toISOString();
}

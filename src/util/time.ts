/** RFC 3339 UTC with nanoseconds from a bigint of ns since the epoch (times before 1970 too). */
export function rfc3339Nanos(ns: bigint): string {
  let sec = ns / 1_000_000_000n;
  let frac = ns % 1_000_000_000n;
  if (frac < 0n) {
    frac += 1_000_000_000n;
    sec -= 1n;
  }
  return new Date(Number(sec) * 1000).toISOString().replace(/\.\d{3}Z$/, `.${frac.toString().padStart(9, '0')}Z`);
}

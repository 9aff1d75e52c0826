/**
 * Calendar arithmetic in an explicit IANA time zone, for retention: snapshot times (RFC 3339, up
 * to nanoseconds) to wall-clock fields, ISO weeks, and Go-style AddDate on the wall clock.
 * Nothing here reads the process's zone unless asked (`localTimeZone()`), so tests are deterministic.
 */

/** A parsed RFC 3339 time: `ns` since the epoch (exact), `ms` = floor(ns / 1e6) for Date. */
export interface Instant {
  ns: bigint;
  ms: number;
}

/** Wall-clock fields in some zone; month 1-12, weekday 0 = Sunday. */
export interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
}

const RFC3339 = /^(\d{4,})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 timestamp (any offset, up to 9 fraction digits) exactly. */
export function parseInstant(text: string): Instant {
  const m = RFC3339.exec(text);
  if (!m) {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) throw new Error(`invalid time "${text}"`);
    return { ns: BigInt(ms) * 1_000_000n, ms };
  }
  const d = new Date(0);
  d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]), 0);
  let sec = BigInt(d.getTime() / 1000);
  const zone = m[8]!;
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone[0] === '-' ? -1n : 1n;
    sec -= sign * (BigInt(Number(zone.slice(1, 3))) * 3600n + BigInt(Number(zone.slice(4, 6))) * 60n);
  }
  const frac = BigInt((m[7] ?? '').padEnd(9, '0') || '0');
  const ns = sec * 1_000_000_000n + frac;
  return { ns, ms: Number(floorDiv(ns, 1_000_000n)) };
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** The process's zone (honours TZ); what restic's "local time" means here. */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

function isUtc(tz: string): boolean {
  return tz === 'UTC' || tz === 'Etc/UTC' || tz === 'Etc/GMT' || tz === 'GMT';
}

/** The wall clock at `ms` in zone `tz`. */
export function wallClock(ms: number, tz: string): WallClock {
  const d = new Date(ms);
  const millisecond = d.getUTCMilliseconds();
  if (isUtc(tz)) {
    return {
      year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(),
      hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), millisecond,
    };
  }
  const parts: Record<string, string> = {};
  for (const p of formatter(tz).formatToParts(d)) parts[p.type] = p.value;
  let year = Number(parts.year);
  if (parts.era === 'BC' || parts.era === 'B') year = 1 - year;
  return {
    year, month: Number(parts.month), day: Number(parts.day),
    hour: Number(parts.hour), minute: Number(parts.minute), second: Number(parts.second), millisecond,
  };
}

/** Wall-clock fields read as if they were UTC, normalising overflow (month 13, day 0, ...). */
function wallAsUtc(w: WallClock): number {
  const d = new Date(0);
  d.setUTCFullYear(w.year, w.month - 1, w.day);
  d.setUTCHours(w.hour, w.minute, w.second, w.millisecond);
  return d.getTime();
}

/** The zone's offset from UTC (ms) at instant `ms`. */
export function zoneOffset(ms: number, tz: string): number {
  if (isUtc(tz)) return 0;
  const w = wallClock(ms, tz);
  return wallAsUtc(w) - ms;
}

/**
 * The instant of a wall-clock time in zone `tz` (fields may overflow; they are normalised first,
 * as Go's time.Date does). In a gap or overlap of a DST change, Go's choice: try the offset in
 * force at the wall time read as UTC, and if the result falls under another offset, use that one.
 */
export function fromWallClock(w: WallClock, tz: string): number {
  const local = wallAsUtc(w);
  const off1 = zoneOffset(local, tz);
  const guess = local - off1;
  const off2 = zoneOffset(guess, tz);
  return off2 === off1 ? guess : local - off2;
}

/** Go's t.AddDate(years, months, days) in zone tz: calendar arithmetic on the wall clock. */
export function addDate(ms: number, tz: string, years: number, months: number, days: number): number {
  const w = wallClock(ms, tz);
  return fromWallClock({ ...w, year: w.year + years, month: w.month + months, day: w.day + days }, tz);
}

/** ISO 8601 week-numbering year and week (weeks start on Monday; week 1 holds the year's first Thursday). */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  const weekday = (d.getUTCDay() + 6) % 7; // Monday = 0
  d.setUTCDate(d.getUTCDate() - weekday + 3); // the Thursday of this week decides the year
  const isoYear = d.getUTCFullYear();
  const jan1 = new Date(0);
  jan1.setUTCFullYear(isoYear, 0, 1);
  const week = 1 + Math.floor((d.getTime() - jan1.getTime()) / 86_400_000 / 7);
  return { year: isoYear, week };
}

/** "2026-11-22 19:33:07" in zone tz (for tables). */
export function formatWallClock(ms: number, tz: string): string {
  const w = wallClock(ms, tz);
  const p = (n: number, l = 2) => String(n).padStart(l, '0');
  return `${p(w.year, 4)}-${p(w.month)}-${p(w.day)} ${p(w.hour)}:${p(w.minute)}:${p(w.second)}`;
}

/**
 * A user-given snapshot time, as restic's `backup --time`: "2012-11-01 22:08:41" (or with a T, or
 * without seconds) is local time in zone tz; a time with Z or an offset is taken as given.
 */
export function parseTimeArgument(text: string, tz: string): Date {
  const s = text.trim();
  const local = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(s);
  if (local) {
    const [y, mo, d, h, mi, sec] = local.slice(1).map((v) => Number(v ?? 0)) as [number, number, number, number, number, number];
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) throw new Error(`invalid time "${text}"`);
    return new Date(fromWallClock({ year: y, month: mo, day: d, hour: h, minute: mi, second: sec, millisecond: 0 }, tz));
  }
  if (RFC3339.test(s)) return new Date(parseInstant(s).ms);
  throw new Error(`invalid time "${text}" (use e.g. "2012-11-01 22:08:41" or 2012-11-01T22:08:41Z)`);
}

/**
 * Retention: which snapshots `forget` keeps, with restic's semantics (restic ≥ 0.17).
 *
 * Snapshots are filtered (--host, --tag, --path), grouped (--group-by, default host,paths) and the
 * policy is applied to each group on its own:
 *
 * - the group is sorted newest first; each --keep-{last,hourly,daily,weekly,monthly,yearly} N
 *   keeps the newest snapshot of each of the N newest buckets (hour, day, ISO week, month, year of
 *   the wall clock in the given time zone; --keep-last: every snapshot is its own bucket) that hold
 *   a snapshot; N = -1 means unlimited;
 * - if a counted rule still has counts left at the group's oldest snapshot, that one is kept too
 *   ("oldest daily snapshot"), so a short history is kept whole;
 * - --keep-within D keeps every snapshot newer than (latest − D); --keep-within-{hourly,...} D keeps
 *   the newest snapshot of each bucket newer than (latest − D) (and the oldest one in range).
 *   "latest" is the newest snapshot of the group that is not in the future (relative to `now`),
 *   and D is subtracted on the calendar (years, months, days) then in hours, as Go's AddDate;
 * - --keep-tag T keeps every snapshot with all tags of T (several flags: any of them);
 * - a snapshot is kept if any rule keeps it; every rule that matched is listed in its reasons.
 *
 * Pure functions: the time zone and `now` are parameters.
 */
import type { Snapshot } from '../repo/formats.js';
import type { SnapshotEntry } from './snapshot-select.js';
import { addDate, isoWeek, localTimeZone, parseInstant, wallClock, type Instant, type WallClock } from './zoned-time.js';

// ------------------------------------------------------------------------------------ durations

/** restic's retention duration: years, months, days and hours (e.g. 1y2m3d4h). */
export interface RetentionDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

/**
 * Parses restic's duration syntax: numbers each followed by y, m (months), d or h, in any order
 * (a unit given twice: the last wins). "1w" is not a unit, as in restic: use 7d.
 */
export function parseRetentionDuration(text: string): RetentionDuration {
  const d: RetentionDuration = { years: 0, months: 0, days: 0, hours: 0 };
  const s = text.trim();
  if (s === '') throw new Error('empty duration (use e.g. 7d, 1m, 1y2m3d4h)');
  const re = /(\d+)([a-zA-Z]?)/y;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) {
      if (s[pos] === '-') throw new Error(`invalid duration "${text}": negative values are not allowed`);
      throw new Error(`invalid duration "${text}": expected a number at "${s.slice(pos)}" (use e.g. 7d, 1m, 1y2m3d4h)`);
    }
    const n = Number(m[1]);
    if (!Number.isSafeInteger(n)) throw new Error(`invalid duration "${text}": number too large`);
    switch (m[2]) {
      case 'y': d.years = n; break;
      case 'm': d.months = n; break;
      case 'd': d.days = n; break;
      case 'h': d.hours = n; break;
      case '': throw new Error(`invalid duration "${text}": no unit after ${n} (use y, m, d or h)`);
      default: throw new Error(`invalid duration "${text}": unknown unit "${m[2]}" after ${n} (use y, m, d or h)`);
    }
    pos = re.lastIndex;
  }
  return d;
}

/** "1y2m3d4h" (zero parts left out), as restic prints durations. */
export function formatRetentionDuration(d: RetentionDuration): string {
  return `${d.years ? `${d.years}y` : ''}${d.months ? `${d.months}m` : ''}${d.days ? `${d.days}d` : ''}${d.hours ? `${d.hours}h` : ''}`;
}

function isZero(d: RetentionDuration | undefined): boolean {
  return !d || (d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0);
}

// ------------------------------------------------------------------------------------ policy

/** Counts: 0 or absent = rule off, -1 = unlimited. */
export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  within?: RetentionDuration;
  withinHourly?: RetentionDuration;
  withinDaily?: RetentionDuration;
  withinWeekly?: RetentionDuration;
  withinMonthly?: RetentionDuration;
  withinYearly?: RetentionDuration;
  /** --keep-tag: each entry is one tag list (all of its tags needed); any entry keeps. */
  tags?: string[][];
}

const COUNT_RULES = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
const WITHIN_RULES = ['withinHourly', 'withinDaily', 'withinWeekly', 'withinMonthly', 'withinYearly'] as const;
type Calendar = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';
const CALENDARS: readonly Calendar[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];

/** True when no rule would keep anything (restic refuses such a policy). */
export function isEmptyPolicy(p: RetentionPolicy): boolean {
  if (p.tags && p.tags.length > 0) return false;
  if (COUNT_RULES.some((r) => (p[r] ?? 0) !== 0)) return false;
  if (!isZero(p.within)) return false;
  return WITHIN_RULES.every((r) => isZero(p[r]));
}

/** Throws on counts other than N ≥ 0 or -1. */
export function checkPolicy(p: RetentionPolicy): void {
  for (const r of COUNT_RULES) {
    const n = p[r];
    if (n !== undefined && (!Number.isInteger(n) || n < -1)) {
      throw new Error(`--keep-${r}: ${n} is not allowed (a count ≥ 0, or unlimited / -1)`);
    }
  }
}

/** restic's one-line description: "keep 7 daily, 4 weekly snapshots, daily snapshots within 1m and ...". */
export function describePolicy(p: RetentionPolicy): string {
  const names: Record<(typeof COUNT_RULES)[number], string> = { last: 'latest', hourly: 'hourly', daily: 'daily', weekly: 'weekly', monthly: 'monthly', yearly: 'yearly' };
  const keeps: string[] = [];
  for (const r of COUNT_RULES) {
    const n = p[r] ?? 0;
    if (n > 0) keeps.push(`${n} ${names[r]}`);
    else if (n === -1) keeps.push(`all ${names[r]}`);
  }
  const withins: string[] = [];
  WITHIN_RULES.forEach((r, i) => {
    const d = p[r];
    if (!isZero(d)) withins.push(`${CALENDARS[i]} snapshots within ${formatRetentionDuration(d!)}`);
  });
  let s = keeps.length ? `${keeps.join(', ')} snapshots` : '';
  if (withins.length) s += (s ? ', ' : '') + withins.join(', ');
  if (p.tags && p.tags.length) s += (s ? ' and ' : '') + `all snapshots with tags [${p.tags.map(tagListString).join(' ')}]`;
  if (!isZero(p.within)) s += (s ? ' and ' : '') + `all snapshots within ${formatRetentionDuration(p.within!)} of the newest`;
  return `keep ${s}`;
}

function tagListString(l: string[]): string {
  return `[${l.join(', ')}]`;
}

// ------------------------------------------------------------------------------------ tags, filter

/** A --tag/--keep-tag value: comma-separated tags, each trimmed ("a,b" = a and b; "" = untagged). */
export function parseTagList(text: string): string[] {
  return text.split(',').map((t) => t.trim());
}

/** restic's HasTags: the snapshot has every tag of the list; the empty tag matches an untagged snapshot. */
export function hasTags(s: Snapshot, list: string[]): boolean {
  for (const t of list) {
    if (t === '' && s.tags.length === 0) return true;
    if (!s.tags.includes(t)) return false;
  }
  return true;
}

/** --host, --tag, --path of forget. */
export interface ForgetFilter {
  hosts?: string[];
  /** Tag lists: a snapshot matches when it has all tags of at least one list. */
  tags?: string[][];
  /** A snapshot matches when its paths include every one of these. */
  paths?: string[];
}

export function isEmptyFilter(f: ForgetFilter): boolean {
  return !f.hosts?.length && !f.tags?.length && !f.paths?.length;
}

/** restic's snapshot filter: host in the list, some tag list matched, all the paths present. */
export function matchesForgetFilter(s: Snapshot, f: ForgetFilter): boolean {
  if (f.hosts?.length && !f.hosts.includes(s.hostname)) return false;
  if (f.tags?.length && !f.tags.some((l) => hasTags(s, l))) return false;
  if (f.paths?.length && !f.paths.every((p) => s.paths.includes(p))) return false;
  return true;
}

// ------------------------------------------------------------------------------------ grouping

export interface GroupBy {
  host: boolean;
  paths: boolean;
  tags: boolean;
}

export const DEFAULT_GROUP_BY: GroupBy = { host: true, paths: true, tags: false };

/** "host,paths" (also host/hosts, path/paths, tag/tags); "" = no grouping (one group). */
export function parseGroupBy(text: string): GroupBy {
  const g: GroupBy = { host: false, paths: false, tags: false };
  for (const part of text.split(',')) {
    switch (part.trim()) {
      case 'host': case 'hosts': g.host = true; break;
      case 'path': case 'paths': g.paths = true; break;
      case 'tag': case 'tags': g.tags = true; break;
      case '': break;
      default: throw new Error(`unknown grouping option "${part.trim()}" (use host, paths and/or tags, or '' for none)`);
    }
  }
  return g;
}

/** What a group shares: fields not grouped by are "" / null, as in restic's JSON. */
export interface GroupKey {
  hostname: string;
  paths: string[] | null;
  tags: string[] | null;
}

export function groupKeyOf(s: Snapshot, by: GroupBy): GroupKey {
  return {
    hostname: by.host ? s.hostname : '',
    paths: by.paths ? [...s.paths].sort() : null,
    tags: by.tags ? [...s.tags].sort() : null,
  };
}

/** "host vm-1, path [/etc /srv], tags [daily]" (restic's wording). */
export function describeGroupKey(k: GroupKey): string {
  const parts: string[] = [];
  if (k.hostname) parts.push(`host ${k.hostname}`);
  if (k.paths?.length) parts.push(`path [${k.paths.join(' ')}]`);
  if (k.tags?.length) parts.push(`tags [${k.tags.join(' ')}]`);
  return parts.join(', ');
}

export interface SnapshotGroup {
  key: GroupKey;
  snapshots: SnapshotEntry[];
}

/** Groups by the key, in a stable order (sorted by host, then paths, then tags). */
export function groupSnapshots(list: SnapshotEntry[], by: GroupBy): SnapshotGroup[] {
  const groups = new Map<string, SnapshotGroup>();
  for (const e of list) {
    const key = groupKeyOf(e.snapshot, by);
    const k = JSON.stringify(key);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { key, snapshots: [] }));
    g.snapshots.push(e);
  }
  const sortKey = (k: GroupKey) => [k.hostname, (k.paths ?? []).join('\0'), (k.tags ?? []).join('\0')].join('\x01');
  return [...groups.values()].sort((a, b) => (sortKey(a.key) < sortKey(b.key) ? -1 : sortKey(a.key) > sortKey(b.key) ? 1 : 0));
}

// ------------------------------------------------------------------------------------ applying

export interface KeepReason {
  entry: SnapshotEntry;
  /** Why it is kept, in restic's words: "last snapshot", "daily snapshot", "within 1d", ... */
  matches: string[];
}

export interface PolicyResult {
  /** Newest first. */
  keep: SnapshotEntry[];
  /** Newest first. */
  remove: SnapshotEntry[];
  /** One per kept snapshot, in the order of keep. */
  reasons: KeepReason[];
}

export interface ApplyOptions {
  /** IANA zone whose wall clock defines hours, days, weeks, months and years (default: the process's). */
  timeZone?: string;
  /** "Now", for telling future snapshots (default: the current time). */
  now?: Date;
}

interface Item {
  entry: SnapshotEntry;
  t: Instant;
  wall: WallClock;
}

function bucketOf(c: Calendar, w: WallClock): number {
  switch (c) {
    case 'hourly': return ((w.year * 100 + w.month) * 100 + w.day) * 100 + w.hour;
    case 'daily': return (w.year * 100 + w.month) * 100 + w.day;
    case 'weekly': { const iw = isoWeek(w.year, w.month, w.day); return iw.year * 100 + iw.week; }
    case 'monthly': return w.year * 100 + w.month;
    case 'yearly': return w.year;
  }
}

/** Newest first; equal times by id, so the result never depends on the input order. */
export function sortNewestFirst<T extends { entry: SnapshotEntry; t: Instant }>(items: T[]): T[] {
  return items.sort((a, b) => (a.t.ns > b.t.ns ? -1 : a.t.ns < b.t.ns ? 1 : a.entry.id < b.entry.id ? -1 : a.entry.id > b.entry.id ? 1 : 0));
}

/** The cutoff instant (ns) of "within d of latest": latest − years/months/days on the calendar − hours. */
function cutoff(latest: Instant | null, d: RetentionDuration, tz: string): bigint | null {
  if (!latest) return null; // no snapshot in the past: everything counts as within
  const ms = addDate(latest.ms, tz, -d.years, -d.months, -d.days);
  if (!Number.isFinite(ms)) return null;
  const subMs = latest.ns - BigInt(latest.ms) * 1_000_000n;
  return BigInt(ms) * 1_000_000n + subMs - BigInt(d.hours) * 3_600_000_000_000n;
}

/** Applies the policy to one group of snapshots (restic's ApplyPolicy). */
export function applyPolicy(list: SnapshotEntry[], p: RetentionPolicy, opts: ApplyOptions = {}): PolicyResult {
  const tz = opts.timeZone ?? localTimeZone();
  const nowNs = BigInt((opts.now ?? new Date()).getTime()) * 1_000_000n;
  const items: Item[] = sortNewestFirst(
    list.map((entry) => {
      const t = parseInstant(entry.snapshot.time);
      return { entry, t, wall: wallClock(t.ms, tz) };
    }),
  );
  const result: PolicyResult = { keep: [], remove: [], reasons: [] };
  if (items.length === 0) return result;

  let latest: Instant | null = null;
  for (const it of items) {
    if (it.t.ns < nowNs && (!latest || it.t.ns > latest.ns)) latest = it.t;
  }

  const counted = COUNT_RULES.map((r) => ({
    rule: r,
    count: p[r] ?? 0,
    last: undefined as number | undefined,
    reason: r === 'last' ? 'last snapshot' : `${r} snapshot`,
  }));
  const within = WITHIN_RULES.map((r, i) => {
    const d = p[r];
    const on = !isZero(d);
    return {
      calendar: CALENDARS[i]!,
      label: on ? formatRetentionDuration(d!) : '',
      cut: on ? cutoff(latest, d!, tz) : null,
      on,
      last: undefined as number | undefined,
    };
  });
  const withinAll = isZero(p.within) ? undefined : { label: formatRetentionDuration(p.within!), cut: cutoff(latest, p.within!, tz) };
  const isAfter = (t: Instant, cut: bigint | null) => cut === null || t.ns > cut;

  items.forEach((it, nr) => {
    const oldest = nr === items.length - 1;
    const matches: string[] = [];
    for (const l of p.tags ?? []) if (hasTags(it.entry.snapshot, l)) matches.push(`has tags ${tagListString(l)}`);
    if (withinAll && isAfter(it.t, withinAll.cut)) matches.push(`within ${withinAll.label}`);
    for (const b of counted) {
      if (b.count === 0) continue;
      const val = b.rule === 'last' ? -1 - nr : bucketOf(b.rule, it.wall);
      if (val !== b.last || oldest) {
        matches.push(val === b.last ? `oldest ${b.reason}` : b.reason);
        b.last = val;
        if (b.count > 0) b.count--;
      }
    }
    for (const b of within) {
      if (!b.on || !isAfter(it.t, b.cut)) continue;
      const val = bucketOf(b.calendar, it.wall);
      if (val !== b.last || oldest) {
        matches.push(`${val === b.last ? 'oldest ' : ''}${b.calendar} within ${b.label}`);
        b.last = val;
      }
    }
    if (matches.length > 0) {
      result.keep.push(it.entry);
      result.reasons.push({ entry: it.entry, matches });
    } else {
      result.remove.push(it.entry);
    }
  });
  return result;
}

// ------------------------------------------------------------------------------------ forget plan

export interface ForgetGroupPlan extends PolicyResult {
  key: GroupKey;
}

export interface ForgetPlanOptions extends ApplyOptions {
  filter?: ForgetFilter;
  groupBy?: GroupBy;
  policy: RetentionPolicy;
  /** With an empty policy: remove every snapshot the filter selects (the filter must not be empty). */
  unsafeAllowRemoveAll?: boolean;
}

/**
 * restic's forget with a policy: refuses an empty policy (unless unsafeAllowRemoveAll with a
 * filter), filters, groups, applies the policy per group, and refuses to empty any group.
 * Throws before anything is decided to be removed, so a refusal removes nothing.
 */
export function planForget(all: SnapshotEntry[], o: ForgetPlanOptions): ForgetGroupPlan[] {
  checkPolicy(o.policy);
  const filter = o.filter ?? {};
  const empty = isEmptyPolicy(o.policy);
  if (empty) {
    if (!o.unsafeAllowRemoveAll) {
      throw new Error('no policy was specified, no snapshots will be removed (give a --keep-* option; to remove every snapshot of a host, tag or path, add --unsafe-allow-remove-all with --host, --tag or --path)');
    }
    if (isEmptyFilter(filter)) throw new Error('--unsafe-allow-remove-all is not allowed unless a snapshot filter option (--host, --tag, --path) is specified');
  }
  const selected = all.filter((e) => matchesForgetFilter(e.snapshot, filter));
  const plans: ForgetGroupPlan[] = [];
  for (const g of groupSnapshots(selected, o.groupBy ?? DEFAULT_GROUP_BY)) {
    const r = applyPolicy(g.snapshots, o.policy, o);
    if (!empty && r.keep.length === 0) {
      throw new Error(`refusing to delete last snapshot of snapshot group "${describeGroupKey(g.key)}" (the policy keeps none of its ${r.remove.length} snapshots)`);
    }
    plans.push({ key: g.key, ...r });
  }
  return plans;
}

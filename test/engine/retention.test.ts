/**
 * Retention with restic's semantics: snapshots with chosen times, kept sets compared with tables
 * computed by hand (and restic's documented examples), plus a few properties.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyPolicy,
  describeGroupKey,
  describePolicy,
  formatRetentionDuration,
  groupSnapshots,
  isEmptyPolicy,
  matchesForgetFilter,
  parseGroupBy,
  parseRetentionDuration as D,
  parseTagList,
  planForget,
  type RetentionPolicy,
} from '../../src/engine/retention.js';
import { addDate, fromWallClock, isoWeek, parseInstant, parseTimeArgument, wallClock } from '../../src/engine/zoned-time.js';
import type { SnapshotEntry } from '../../src/engine/snapshot-select.js';

let seq = 0;
/** A snapshot at `time` ("2019-09-01 11:00:00" = UTC, or a full RFC 3339 string). */
function snap(time: string, o: { host?: string; paths?: string[]; tags?: string[]; id?: string } = {}): SnapshotEntry {
  const t = /[zZ]|[+-]\d\d:\d\d$/.test(time) ? time : `${time.replace(' ', 'T')}Z`;
  const id = o.id ?? (seq++).toString(16).padStart(8, '0').padEnd(64, 'a');
  return {
    id,
    snapshot: { version: 1, time: t, tree: 'b'.repeat(64), paths: o.paths ?? ['/home/user/work'], hostname: o.host ?? 'mopped', tags: o.tags ?? [], source: { type: 'files' } },
  };
}

const UTC = { timeZone: 'UTC', now: new Date('2030-01-01T00:00:00Z') };

/** "YYYY-MM-DD HH:MM:SS" of each entry (UTC; sub-second parts dropped). */
function times(list: SnapshotEntry[]): string[] {
  return list.map((e) => e.snapshot.time.slice(0, 19).replace('T', ' '));
}

function kept(list: SnapshotEntry[], p: RetentionPolicy, opts = UTC): Array<[string, string[]]> {
  return applyPolicy(list, p, opts).reasons.map((r) => [r.entry.snapshot.time.slice(0, 19).replace('T', ' '), r.matches]);
}

/** Every day from `from` to `to` (inclusive) at hh:mm:ss UTC. */
function daily(from: string, to: string, at = '12:00:00'): SnapshotEntry[] {
  const out: SnapshotEntry[] = [];
  for (let d = new Date(`${from}T${at}Z`); d <= new Date(`${to}T${at}Z`); d = new Date(d.getTime() + 86_400_000)) {
    out.push(snap(d.toISOString().replace('.000Z', 'Z')));
  }
  return out;
}

describe('restic documentation examples', () => {
  // "Removing snapshots according to a policy": one backup every Sunday for 12 weeks.
  const sundays = [
    '2019-09-01', '2019-09-08', '2019-09-15', '2019-09-22', '2019-09-29', '2019-10-06',
    '2019-10-13', '2019-10-20', '2019-10-27', '2019-11-03', '2019-11-10', '2019-11-17',
  ].map((d) => snap(`${d} 11:00:00`));

  it('--keep-daily 4 keeps the last four Sundays and removes the other eight', () => {
    const r = applyPolicy(sundays, { daily: 4 }, UTC);
    expect(times(r.keep)).toEqual(['2019-11-17 11:00:00', '2019-11-10 11:00:00', '2019-11-03 11:00:00', '2019-10-27 11:00:00']);
    expect(r.reasons.map((x) => x.matches)).toEqual([['daily snapshot'], ['daily snapshot'], ['daily snapshot'], ['daily snapshot']]);
    expect(times(r.remove)).toEqual(['2019-10-20', '2019-10-13', '2019-10-06', '2019-09-29', '2019-09-22', '2019-09-15', '2019-09-08', '2019-09-01'].map((d) => `${d} 11:00:00`));
    expect(describePolicy({ daily: 4 })).toBe('keep 4 daily snapshots');
  });

  it('--keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-yearly 75 on one backup a day', () => {
    // Daily backups from 2000-01-01 to Sunday 2024-06-16: 7 dailies, then 4 more Sundays (the
    // latest one is a daily already), 11 more month ends, 23 more year ends (2023-12-31 is a month
    // end already), and — 75 yearly counts not being used up — the oldest snapshot.
    const list = daily('2000-01-01', '2024-06-16');
    const r = applyPolicy(list, { daily: 7, weekly: 5, monthly: 12, yearly: 75 }, UTC);
    const expected = [
      ['2024-06-16', ['daily snapshot', 'weekly snapshot', 'monthly snapshot', 'yearly snapshot']],
      ['2024-06-15', ['daily snapshot']], ['2024-06-14', ['daily snapshot']], ['2024-06-13', ['daily snapshot']],
      ['2024-06-12', ['daily snapshot']], ['2024-06-11', ['daily snapshot']], ['2024-06-10', ['daily snapshot']],
      ['2024-06-09', ['weekly snapshot']], ['2024-06-02', ['weekly snapshot']],
      ['2024-05-31', ['monthly snapshot']],
      ['2024-05-26', ['weekly snapshot']], ['2024-05-19', ['weekly snapshot']],
      ['2024-04-30', ['monthly snapshot']], ['2024-03-31', ['monthly snapshot']], ['2024-02-29', ['monthly snapshot']],
      ['2024-01-31', ['monthly snapshot']],
      ['2023-12-31', ['monthly snapshot', 'yearly snapshot']],
      ['2023-11-30', ['monthly snapshot']], ['2023-10-31', ['monthly snapshot']], ['2023-09-30', ['monthly snapshot']],
      ['2023-08-31', ['monthly snapshot']], ['2023-07-31', ['monthly snapshot']],
      ...Array.from({ length: 23 }, (_, i) => [`${2022 - i}-12-31`, ['yearly snapshot']]),
      ['2000-01-01', ['oldest yearly snapshot']],
    ];
    expect(kept(list, { daily: 7, weekly: 5, monthly: 12, yearly: 75 })).toEqual(expected.map(([d, m]) => [`${d as string} 12:00:00`, m]));
    expect(r.keep).toHaveLength(7 + 4 + 11 + 23 + 1);
    expect(r.keep.length + r.remove.length).toBe(list.length);
  });

  it('--tag foo --keep-last 1 keeps the latest foo; --tag foo --tag bar: either tag; --tag foo,bar: both', () => {
    const list = [
      snap('2024-01-01 00:00:00', { tags: ['foo'] }),
      snap('2024-01-02 00:00:00', { tags: ['bar'] }),
      snap('2024-01-03 00:00:00', { tags: ['foo', 'bar'] }),
      snap('2024-01-04 00:00:00', { tags: ['foo'] }),
      snap('2024-01-05 00:00:00'),
    ];
    const plan = (tags: string[]) => planForget(list, { policy: { last: 1 }, filter: { tags: tags.map(parseTagList) }, ...UTC });
    const summary = (tags: string[]) => plan(tags).map((g) => [times(g.keep), times(g.remove)]);
    expect(summary(['foo'])).toEqual([[['2024-01-04 00:00:00'], ['2024-01-03 00:00:00', '2024-01-01 00:00:00']]]);
    expect(summary(['foo', 'bar'])).toEqual([[['2024-01-04 00:00:00'], ['2024-01-03 00:00:00', '2024-01-02 00:00:00', '2024-01-01 00:00:00']]]);
    expect(summary(['foo,bar'])).toEqual([[['2024-01-03 00:00:00'], []]]);
    expect(summary([''])).toEqual([[['2024-01-05 00:00:00'], []]]); // '' = untagged only
  });
});

describe('counted rules', () => {
  const list = [
    snap('2016-01-01 01:02:03'), snap('2016-01-01 01:03:03'), snap('2016-01-01 07:08:03'),
    snap('2016-01-03 07:02:03'), snap('2016-01-04 10:23:03'), snap('2016-01-04 11:23:03'),
    snap('2016-01-04 12:23:03'), snap('2016-01-04 12:24:03'), snap('2016-01-04 16:23:03'),
    snap('2016-01-12 21:02:03'), snap('2016-01-12 21:08:03'), snap('2016-01-18 12:02:03'),
  ];

  it('--keep-last N keeps the N newest; N above the count keeps all, never "oldest"', () => {
    expect(kept(list, { last: 3 })).toEqual([
      ['2016-01-18 12:02:03', ['last snapshot']], ['2016-01-12 21:08:03', ['last snapshot']], ['2016-01-12 21:02:03', ['last snapshot']],
    ]);
    const all = applyPolicy(list, { last: 50 }, UTC);
    expect(all.keep).toHaveLength(12);
    expect(all.reasons.every((r) => r.matches.join() === 'last snapshot')).toBe(true);
    expect(applyPolicy(list, { last: -1 }, UTC).keep).toHaveLength(12);
  });

  it('--keep-hourly: the newest snapshot of each of the last N hours that have one', () => {
    expect(times(applyPolicy(list, { hourly: 5 }, UTC).keep)).toEqual([
      '2016-01-18 12:02:03', '2016-01-12 21:08:03', '2016-01-04 16:23:03', '2016-01-04 12:24:03', '2016-01-04 11:23:03',
    ]);
  });

  it('--keep-daily with more counts than days keeps the oldest snapshot too ("oldest daily snapshot")', () => {
    expect(kept(list, { daily: 10 })).toEqual([
      ['2016-01-18 12:02:03', ['daily snapshot']],
      ['2016-01-12 21:08:03', ['daily snapshot']],
      ['2016-01-04 16:23:03', ['daily snapshot']],
      ['2016-01-03 07:02:03', ['daily snapshot']],
      ['2016-01-01 07:08:03', ['daily snapshot']],
      ['2016-01-01 01:02:03', ['oldest daily snapshot']],
    ]);
    // exactly as many counts as days: nothing left for the oldest
    expect(times(applyPolicy(list, { daily: 5 }, UTC).keep)).toHaveLength(5);
  });

  it('--keep-weekly uses ISO weeks (Monday to Sunday; week-year at the turn of the year)', () => {
    // 2020-12-31 (Thu) and 2021-01-03 (Sun) are both in 2020-W53; 2021-01-04 (Mon) is 2021-W01.
    const turn = [snap('2020-12-20 10:00:00'), snap('2020-12-31 10:00:00'), snap('2021-01-03 10:00:00'), snap('2021-01-04 10:00:00')];
    expect(kept(turn, { weekly: 2 })).toEqual([['2021-01-04 10:00:00', ['weekly snapshot']], ['2021-01-03 10:00:00', ['weekly snapshot']]]);
    expect(kept(turn, { weekly: 3 })).toEqual([
      ['2021-01-04 10:00:00', ['weekly snapshot']], ['2021-01-03 10:00:00', ['weekly snapshot']], ['2020-12-20 10:00:00', ['weekly snapshot']],
    ]);
    // yearly is the calendar year, not the ISO week-year
    expect(times(applyPolicy(turn, { yearly: 2 }, UTC).keep)).toEqual(['2021-01-04 10:00:00', '2020-12-31 10:00:00']);
    // a Sunday and the next Monday: different weeks
    expect(times(applyPolicy([snap('2024-06-16 23:59:59'), snap('2024-06-17 00:00:00')], { weekly: 1 }, UTC).keep)).toEqual(['2024-06-17 00:00:00']);
  });

  it('--keep-monthly / --keep-yearly, and several rules: a snapshot is kept by any, with every reason', () => {
    const l = [
      snap('2022-05-01 00:00:00'), snap('2022-12-31 23:59:59'), snap('2023-01-15 00:00:00'), snap('2023-01-31 00:00:00'),
      snap('2023-02-01 00:00:00'), snap('2023-02-28 00:00:00'), snap('2023-03-01 00:00:00'),
    ];
    expect(kept(l, { monthly: 3, yearly: 2, last: 1 })).toEqual([
      ['2023-03-01 00:00:00', ['last snapshot', 'monthly snapshot', 'yearly snapshot']],
      ['2023-02-28 00:00:00', ['monthly snapshot']],
      ['2023-01-31 00:00:00', ['monthly snapshot']],
      ['2022-12-31 23:59:59', ['yearly snapshot']],
    ]);
    expect(describePolicy({ last: 1, monthly: 3, yearly: -1 })).toBe('keep 1 latest, 3 monthly, all yearly snapshots');
  });

  it('unlimited (-1) keeps one per bucket, and the oldest one', () => {
    expect(kept(list, { daily: -1 }).map(([t, m]) => `${t} ${m.join()}`)).toEqual([
      '2016-01-18 12:02:03 daily snapshot', '2016-01-12 21:08:03 daily snapshot', '2016-01-04 16:23:03 daily snapshot',
      '2016-01-03 07:02:03 daily snapshot', '2016-01-01 07:08:03 daily snapshot', '2016-01-01 01:02:03 oldest daily snapshot',
    ]);
  });
});

describe('--keep-within and --keep-within-*', () => {
  it('keeps snapshots strictly newer than latest − duration (calendar months, as Go AddDate)', () => {
    // latest 2024-03-31 12:00 − 1m = "2024-02-31" = 2024-03-02 12:00 (2024 is a leap year)
    const l = [snap('2024-03-01 23:00:00'), snap('2024-03-02 12:00:00'), snap('2024-03-02 12:00:01'), snap('2024-03-31 12:00:00')];
    expect(kept(l, { within: D('1m') })).toEqual([['2024-03-31 12:00:00', ['within 1m']], ['2024-03-02 12:00:01', ['within 1m']]]);
  });

  it('hours are subtracted after the calendar part: 13d23h, 1y2m3d3h', () => {
    const l = [snap('2016-01-04 12:02:03'), snap('2016-01-04 13:02:03'), snap('2016-01-04 13:02:04'), snap('2016-01-18 12:02:03')];
    // 2016-01-18 12:02:03 − 13d = 2016-01-05 12:02:03, − 23h = 2016-01-04 13:02:03 (excluded: not after)
    expect(times(applyPolicy(l, { within: D('13d23h') }, UTC).keep)).toEqual(['2016-01-18 12:02:03', '2016-01-04 13:02:04']);
    // − 1y = 2015-01-18, − 2m = 2014-11-18, − 3d = 2014-11-15 12:02:03, − 3h = 09:02:03
    const m = [snap('2014-11-15 09:02:03'), snap('2014-11-15 10:20:30'), snap('2016-01-18 12:02:03')];
    expect(times(applyPolicy(m, { within: D('1y2m3d3h') }, UTC).keep)).toEqual(['2016-01-18 12:02:03', '2014-11-15 10:20:30']);
  });

  it('is relative to the latest snapshot, not to now; snapshots in the future are kept and not "latest"', () => {
    const l = [snap('2020-01-01 00:00:00'), snap('2020-01-05 00:00:00'), snap('2020-01-06 00:00:00'), snap('2031-01-01 00:00:00')];
    // now = 2030: the 2031 snapshot is ignored as latest; 2020-01-06 − 2d = 2020-01-04
    expect(kept(l, { within: D('2d') })).toEqual([
      ['2031-01-01 00:00:00', ['within 2d']], ['2020-01-06 00:00:00', ['within 2d']], ['2020-01-05 00:00:00', ['within 2d']],
    ]);
    // every snapshot in the future: no latest, all are within
    expect(applyPolicy(l, { within: D('1h') }, { timeZone: 'UTC', now: new Date('2019-01-01T00:00:00Z') }).remove).toEqual([]);
  });

  it('--keep-within-daily keeps the newest per day in range, and the oldest snapshot when in range', () => {
    const l = [
      snap('2024-01-01 08:00:00'), snap('2024-01-05 08:00:00'), snap('2024-01-05 20:00:00'),
      snap('2024-01-06 09:00:00'), snap('2024-01-06 10:00:00'), snap('2024-01-08 10:00:00'),
    ];
    expect(kept(l, { withinDaily: D('5d') })).toEqual([
      ['2024-01-08 10:00:00', ['daily within 5d']], ['2024-01-06 10:00:00', ['daily within 5d']], ['2024-01-05 20:00:00', ['daily within 5d']],
    ]);
    expect(kept(l, { withinDaily: D('1m') })).toEqual([
      ['2024-01-08 10:00:00', ['daily within 1m']], ['2024-01-06 10:00:00', ['daily within 1m']],
      ['2024-01-05 20:00:00', ['daily within 1m']], ['2024-01-01 08:00:00', ['daily within 1m']],
    ]);
    const same = [snap('2024-01-01 08:00:00'), snap('2024-01-01 09:00:00'), snap('2024-01-02 09:00:00')];
    expect(kept(same, { withinDaily: D('7d') })).toEqual([
      ['2024-01-02 09:00:00', ['daily within 7d']], ['2024-01-01 09:00:00', ['daily within 7d']], ['2024-01-01 08:00:00', ['oldest daily within 7d']],
    ]);
  });

  it('hourly, weekly, monthly and yearly variants, alone and combined with within', () => {
    const l = [
      snap('2022-06-01 00:00:00'), snap('2023-03-10 00:00:00'), snap('2023-12-20 00:00:00'), snap('2024-01-02 10:10:00'),
      snap('2024-01-02 10:50:00'), snap('2024-01-02 11:00:00'), snap('2024-01-03 11:30:00'),
    ];
    // − 1d = 2024-01-02 11:30: only the latest; − 2d: the newest of hours 11 (Jan 3), 11 and 10 (Jan 2)
    expect(times(applyPolicy(l, { withinHourly: D('1d') }, UTC).keep)).toEqual(['2024-01-03 11:30:00']);
    expect(times(applyPolicy(l, { withinHourly: D('2d') }, UTC).keep)).toEqual(['2024-01-03 11:30:00', '2024-01-02 11:00:00', '2024-01-02 10:50:00']);
    expect(times(applyPolicy(l, { withinWeekly: D('1m') }, UTC).keep)).toEqual(['2024-01-03 11:30:00', '2023-12-20 00:00:00']);
    expect(times(applyPolicy(l, { withinMonthly: D('1y') }, UTC).keep)).toEqual(['2024-01-03 11:30:00', '2023-12-20 00:00:00', '2023-03-10 00:00:00']);
    expect(kept(l, { withinYearly: D('2y'), within: D('1h') })).toEqual([
      ['2024-01-03 11:30:00', ['within 1h', 'yearly within 2y']],
      ['2023-12-20 00:00:00', ['yearly within 2y']],
      ['2022-06-01 00:00:00', ['yearly within 2y']],
    ]);
    expect(describePolicy({ withinDaily: D('7d'), withinWeekly: D('1m'), tags: [['a', 'b']], within: D('2d') })).toBe(
      'keep daily snapshots within 7d, weekly snapshots within 1m and all snapshots with tags [[a, b]] and all snapshots within 2d of the newest',
    );
  });

  it('durations: restic syntax (y m d h, any order, last repeat wins); 1w, negatives and bare numbers refused', () => {
    expect(D('1y2m3d4h')).toEqual({ years: 1, months: 2, days: 3, hours: 4 });
    expect(D('4h1y')).toEqual({ years: 1, months: 0, days: 0, hours: 4 });
    expect(D('1d2d')).toEqual({ years: 0, months: 0, days: 2, hours: 0 });
    expect(formatRetentionDuration(D('3h2y'))).toBe('2y3h');
    expect(() => D('1w')).toThrow(/unknown unit "w"/);
    expect(() => D('-1d')).toThrow(/negative/);
    expect(() => D('5')).toThrow(/no unit/);
    expect(() => D('')).toThrow(/empty/);
    expect(isEmptyPolicy({ within: D('0d') })).toBe(true);
  });
});

describe('--keep-tag', () => {
  const l = [
    snap('2024-01-01 00:00:00', { tags: ['foo'] }), snap('2024-01-02 00:00:00', { tags: ['foo', 'bar'] }),
    snap('2024-01-03 00:00:00', { tags: ['bar'] }), snap('2024-01-04 00:00:00'), snap('2024-01-05 00:00:00', { tags: ['baz'] }),
  ];

  it('keeps snapshots with all tags of a list; several lists: any; \'\' = untagged; not counted', () => {
    expect(kept(l, { tags: [['foo']] })).toEqual([['2024-01-02 00:00:00', ['has tags [foo]']], ['2024-01-01 00:00:00', ['has tags [foo]']]]);
    expect(kept(l, { tags: [['foo', 'bar']] })).toEqual([['2024-01-02 00:00:00', ['has tags [foo, bar]']]]);
    expect(kept(l, { tags: [['foo'], ['bar']] })).toEqual([
      ['2024-01-03 00:00:00', ['has tags [bar]']], ['2024-01-02 00:00:00', ['has tags [foo]', 'has tags [bar]']], ['2024-01-01 00:00:00', ['has tags [foo]']],
    ]);
    expect(kept(l, { tags: [['']] })).toEqual([['2024-01-04 00:00:00', ['has tags []']]]);
    expect(kept(l, { tags: [['foo']], last: 1 })).toEqual([
      ['2024-01-05 00:00:00', ['last snapshot']], ['2024-01-02 00:00:00', ['has tags [foo]']], ['2024-01-01 00:00:00', ['has tags [foo]']],
    ]);
  });

  it('a --keep-tag that keeps nothing in a group is refused (nothing is removed)', () => {
    expect(() => planForget(l, { policy: { tags: [['nope']] }, ...UTC })).toThrow('refusing to delete last snapshot of snapshot group "host mopped, path [/home/user/work]"');
  });
});

describe('grouping and filtering', () => {
  const l = [
    snap('2024-01-01 00:00:00', { host: 'a', paths: ['/etc', '/srv'] }),
    snap('2024-01-02 00:00:00', { host: 'a', paths: ['/srv', '/etc'], tags: ['x'] }),
    snap('2024-01-03 00:00:00', { host: 'b', paths: ['/etc', '/srv'] }),
    snap('2024-01-04 00:00:00', { host: 'a', paths: ['/etc'], tags: ['x', 'y'] }),
    snap('2024-01-05 00:00:00', { host: 'b', paths: ['/etc', '/srv'], tags: ['y'] }),
  ];

  it('default host,paths: path order does not matter; the policy applies per group', () => {
    const plans = planForget(l, { policy: { last: 1 }, ...UTC });
    expect(plans.map((p) => [describeGroupKey(p.key), times(p.keep), times(p.remove)])).toEqual([
      ['host a, path [/etc /srv]', ['2024-01-02 00:00:00'], ['2024-01-01 00:00:00']],
      ['host a, path [/etc]', ['2024-01-04 00:00:00'], []],
      ['host b, path [/etc /srv]', ['2024-01-05 00:00:00'], ['2024-01-03 00:00:00']],
    ]);
    expect(plans[0]!.key).toEqual({ hostname: 'a', paths: ['/etc', '/srv'], tags: null });
  });

  it("--group-by '' is one group; tags; host; unknown options refused", () => {
    expect(planForget(l, { policy: { last: 1 }, groupBy: parseGroupBy(''), ...UTC }).map((p) => [p.key, p.keep.length, p.remove.length])).toEqual([
      [{ hostname: '', paths: null, tags: null }, 1, 4],
    ]);
    expect(groupSnapshots(l, parseGroupBy('tags')).map((g) => [g.key.tags, g.snapshots.length])).toEqual([[[], 2], [['x'], 1], [['x', 'y'], 1], [['y'], 1]]);
    expect(groupSnapshots(l, parseGroupBy('host')).map((g) => [g.key.hostname, g.snapshots.length])).toEqual([['a', 3], ['b', 2]]);
    expect(parseGroupBy('hosts,path,tag')).toEqual({ host: true, paths: true, tags: true });
    expect(() => parseGroupBy('host,time')).toThrow(/unknown grouping option "time"/);
  });

  it('filters: --host (any), --tag (lists: all tags of any list), --path (all given paths present)', () => {
    const f = (filter: Parameters<typeof matchesForgetFilter>[1]) => l.filter((e) => matchesForgetFilter(e.snapshot, filter)).map((e) => e.snapshot.time.slice(8, 10));
    expect(f({ hosts: ['b'] })).toEqual(['03', '05']);
    expect(f({ hosts: ['a', 'b'] })).toHaveLength(5);
    expect(f({ tags: [['x', 'y']] })).toEqual(['04']);
    expect(f({ tags: [['x'], ['y']] })).toEqual(['02', '04', '05']);
    expect(f({ tags: [['']] })).toEqual(['01', '03']);
    expect(f({ paths: ['/srv'] })).toEqual(['01', '02', '03', '05']);
    expect(f({ paths: ['/etc', '/srv'] })).toEqual(['01', '02', '03', '05']);
    expect(f({ paths: ['/etc'], hosts: ['a'], tags: [['x']] })).toEqual(['02', '04']);
  });

  it('refusals: empty policy; --unsafe-allow-remove-all needs a filter, then removes all it selects', () => {
    expect(() => planForget(l, { policy: {}, ...UTC })).toThrow(/^no policy was specified, no snapshots will be removed/);
    expect(() => planForget(l, { policy: { last: 0, within: D('0h') }, ...UTC })).toThrow(/no policy was specified/);
    expect(() => planForget(l, { policy: {}, unsafeAllowRemoveAll: true, ...UTC })).toThrow(/--unsafe-allow-remove-all is not allowed unless a snapshot filter/);
    const plans = planForget(l, { policy: {}, unsafeAllowRemoveAll: true, filter: { hosts: ['b'] }, ...UTC });
    expect(plans.flatMap((p) => times(p.remove))).toEqual(['2024-01-05 00:00:00', '2024-01-03 00:00:00']);
    expect(plans.flatMap((p) => p.keep)).toEqual([]);
    expect(() => planForget(l, { policy: { last: -2 }, ...UTC })).toThrow(/--keep-last/);
  });
});

describe('edge cases', () => {
  it('snapshots at the same time: one per bucket, the same one whatever the input order', () => {
    const l = [snap('2024-01-01 10:00:00', { id: 'c'.repeat(64) }), snap('2024-01-01 10:00:00', { id: 'a'.repeat(64) }), snap('2024-01-01 10:00:00', { id: 'b'.repeat(64) }), snap('2023-12-01 10:00:00')];
    const a = applyPolicy(l, { daily: 1 }, UTC);
    const b = applyPolicy([...l].reverse(), { daily: 1 }, UTC);
    expect(a.keep.map((e) => e.id)).toEqual(['a'.repeat(64)]);
    expect(b.keep.map((e) => e.id)).toEqual(['a'.repeat(64)]);
    expect(applyPolicy(l, { last: 2 }, UTC).keep.map((e) => e.id[0])).toEqual(['a', 'b']);
  });

  it('nanoseconds order snapshots within one millisecond', () => {
    const l = [snap('2024-01-01T10:00:00.000000002Z'), snap('2024-01-01T10:00:00.000000001Z'), snap('2024-01-01T10:00:00.0000005Z')];
    expect(applyPolicy(l, { last: 1 }, UTC).keep[0]!.snapshot.time).toBe('2024-01-01T10:00:00.0000005Z');
    expect(parseInstant('1969-12-31T23:59:59.5Z')).toEqual({ ns: -500_000_000n, ms: -500 });
    expect(parseInstant('2024-01-01T12:00:00+02:00').ms).toBe(Date.parse('2024-01-01T10:00:00Z'));
  });

  it('an empty group, and N = 0 with another rule', () => {
    expect(applyPolicy([], { last: 1 }, UTC)).toEqual({ keep: [], remove: [], reasons: [] });
    expect(times(applyPolicy([snap('2024-01-01 00:00:00'), snap('2024-01-02 00:00:00')], { last: 0, daily: 1 }, UTC).keep)).toEqual(['2024-01-02 00:00:00']);
  });

  it('buckets follow the wall clock of the given time zone', () => {
    // O absorbs the "oldest" rule. In UTC A is Jan 1 and B, C Jan 2; in New York (UTC−5) A, B are
    // Jan 1 and C Jan 2.
    const O = snap('2023-12-20 12:00:00');
    const A = snap('2024-01-01 20:00:00');
    const B = snap('2024-01-02 02:00:00');
    const C = snap('2024-01-02 10:00:00');
    const l = [O, A, B, C];
    const now = new Date('2030-01-01T00:00:00Z');
    expect(times(applyPolicy(l, { daily: -1 }, { timeZone: 'UTC', now }).keep)).toEqual(times([C, A, O]));
    expect(times(applyPolicy(l, { daily: -1 }, { timeZone: 'America/New_York', now }).keep)).toEqual(times([C, B, O]));
    // Kolkata (UTC+5:30): 2024-01-01 18:29:59Z is 23:59:59 on Jan 1, 18:30Z is Jan 2
    const k = [snap('2023-12-01 00:00:00'), snap('2024-01-01 18:29:59'), snap('2024-01-01 18:30:00')];
    expect(times(applyPolicy(k, { daily: -1 }, { timeZone: 'Asia/Kolkata', now }).keep)).toHaveLength(3);
    expect(times(applyPolicy(k, { daily: -1 }, { timeZone: 'UTC', now }).keep)).toHaveLength(2);
  });

  it('DST: the repeated hour of a fall-back is one hourly bucket; --keep-within 1d spans 23 hours in spring', () => {
    const berlin = { timeZone: 'Europe/Berlin', now: new Date('2030-01-01T00:00:00Z') };
    // 2024-10-27: 02:30 CEST = 00:30Z and 02:30 CET = 01:30Z, both wall-clock hour 02
    const fall = [snap('2024-10-26 12:00:00'), snap('2024-10-27 00:30:00'), snap('2024-10-27 01:30:00')];
    expect(times(applyPolicy(fall, { hourly: 5 }, berlin).keep)).toEqual(['2024-10-27 01:30:00', '2024-10-26 12:00:00']);
    expect(times(applyPolicy(fall, { hourly: 5 }, UTC).keep)).toHaveLength(3);
    // latest 2024-03-31 12:00 CEST (10:00Z) − 1 day = 2024-03-30 12:00 CET = 11:00Z (23 h earlier)
    const spring = [snap('2024-03-30 10:30:00'), snap('2024-03-30 11:00:00'), snap('2024-03-30 11:30:00'), snap('2024-03-31 10:00:00')];
    expect(times(applyPolicy(spring, { within: D('1d') }, berlin).keep)).toEqual(['2024-03-31 10:00:00', '2024-03-30 11:30:00']);
    expect(times(applyPolicy(spring, { within: D('1d') }, UTC).keep)).toEqual(['2024-03-31 10:00:00', '2024-03-30 11:30:00', '2024-03-30 11:00:00', '2024-03-30 10:30:00']);
    // …and 24h is 24 hours whatever the zone
    expect(times(applyPolicy(spring, { within: D('24h') }, berlin).keep)).toEqual(['2024-03-31 10:00:00', '2024-03-30 11:30:00', '2024-03-30 11:00:00', '2024-03-30 10:30:00']);
  });

  it('calendar helpers: ISO weeks, AddDate normalisation, wall clocks, --time parsing', () => {
    expect(isoWeek(2020, 12, 31)).toEqual({ year: 2020, week: 53 });
    expect(isoWeek(2021, 1, 3)).toEqual({ year: 2020, week: 53 });
    expect(isoWeek(2021, 1, 4)).toEqual({ year: 2021, week: 1 });
    expect(isoWeek(2024, 12, 30)).toEqual({ year: 2025, week: 1 });
    expect(isoWeek(2019, 11, 17)).toEqual({ year: 2019, week: 46 });
    expect(new Date(addDate(Date.parse('2023-03-31T12:00:00Z'), 'UTC', 0, -1, 0)).toISOString()).toBe('2023-03-03T12:00:00.000Z');
    expect(new Date(addDate(Date.parse('2024-02-29T00:00:00Z'), 'UTC', -1, 0, 0)).toISOString()).toBe('2023-03-01T00:00:00.000Z');
    expect(wallClock(Date.parse('2024-07-01T00:00:00Z'), 'Europe/Berlin')).toMatchObject({ year: 2024, month: 7, day: 1, hour: 2 });
    // wall times in a DST gap or overlap resolve as Go's time.Date does
    const w = (day: number, hour: number, month: number) => ({ year: 2024, month, day, hour, minute: 30, second: 0, millisecond: 0 });
    expect(new Date(fromWallClock(w(31, 2, 3), 'Europe/Berlin')).toISOString()).toBe('2024-03-31T01:30:00.000Z'); // 02:30 does not exist: 03:30 CEST
    expect(new Date(fromWallClock(w(27, 2, 10), 'Europe/Berlin')).toISOString()).toBe('2024-10-27T01:30:00.000Z'); // 02:30 twice: the CET one
    expect(new Date(fromWallClock(w(27, 1, 10), 'Europe/Berlin')).toISOString()).toBe('2024-10-26T23:30:00.000Z');
    expect(parseTimeArgument('2012-11-01 22:08:41', 'Europe/Berlin').toISOString()).toBe('2012-11-01T21:08:41.000Z');
    expect(parseTimeArgument('2012-11-01T22:08:41Z', 'Europe/Berlin').toISOString()).toBe('2012-11-01T22:08:41.000Z');
    expect(() => parseTimeArgument('yesterday', 'UTC')).toThrow(/invalid time/);
  });
});

describe('properties', () => {
  const MIN = Date.parse('2020-01-01T00:00:00Z');
  const MAX = Date.parse('2024-12-31T23:59:59Z');
  const snapshots = fc
    .array(fc.record({ t: fc.integer({ min: MIN, max: MAX }), tags: fc.subarray(['a', 'b']) }), { minLength: 0, maxLength: 60 })
    .map((xs) => xs.map((x, i) => snap(new Date(x.t).toISOString(), { tags: x.tags, id: i.toString(16).padStart(64, '0') })));
  const count = fc.oneof(fc.constant(0), fc.constant(-1), fc.integer({ min: 1, max: 8 }));
  const dur = fc.option(fc.record({ years: fc.integer({ min: 0, max: 2 }), months: fc.integer({ min: 0, max: 5 }), days: fc.integer({ min: 0, max: 40 }), hours: fc.integer({ min: 0, max: 48 }) }), { nil: undefined });
  const policy: fc.Arbitrary<RetentionPolicy> = fc.record({
    last: count, hourly: count, daily: count, weekly: count, monthly: count, yearly: count,
    within: dur, withinHourly: dur, withinDaily: dur, withinWeekly: dur, withinMonthly: dur, withinYearly: dur,
    tags: fc.subarray([['a'], ['b'], ['a', 'b'], ['']]),
  });
  const zone = fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe');
  const now = new Date('2025-06-01T00:00:00Z');

  it('kept ∪ removed = input, disjoint; one non-empty reason list per kept snapshot; input order does not matter', () => {
    fc.assert(fc.property(snapshots, policy, zone, (l, p, tz) => {
      const r = applyPolicy(l, p, { timeZone: tz, now });
      const keep = r.keep.map((e) => e.id);
      const remove = r.remove.map((e) => e.id);
      expect(new Set([...keep, ...remove]).size).toBe(l.length);
      expect(keep.length + remove.length).toBe(l.length);
      expect(r.reasons.map((x) => x.entry.id)).toEqual(keep);
      expect(r.reasons.every((x) => x.matches.length > 0)).toBe(true);
      const again = applyPolicy([...l].reverse(), p, { timeZone: tz, now });
      expect(again.keep.map((e) => e.id)).toEqual(keep);
    }), { numRuns: 150 });
  });

  it('--keep-last N keeps exactly the min(N, count) newest', () => {
    fc.assert(fc.property(snapshots, fc.integer({ min: 1, max: 80 }), (l, n) => {
      const r = applyPolicy(l, { last: n }, { timeZone: 'UTC', now });
      const newest = [...l].sort((a, b) => Date.parse(b.snapshot.time) - Date.parse(a.snapshot.time) || (a.id < b.id ? -1 : 1)).slice(0, n);
      expect(r.keep.map((e) => e.id)).toEqual(newest.map((e) => e.id));
    }), { numRuns: 150 });
  });

  it('a policy that asks for more (higher counts, unlimited, longer durations, more rules) never removes more', () => {
    const more = (n: number | undefined, extra: number) => (n === -1 || extra < 0 ? -1 : (n ?? 0) + extra);
    const longer = (d: RetentionPolicy["within"], e: number, extra = Math.max(0, e)) => (d ? { ...d, days: d.days + extra } : extra > 0 ? { years: 0, months: 0, days: extra, hours: 0 } : undefined);
    fc.assert(fc.property(snapshots, policy, fc.array(fc.integer({ min: -1, max: 3 }), { minLength: 12, maxLength: 12 }), zone, (l, p, e, tz) => {
      const bigger: RetentionPolicy = {
        last: more(p.last, e[0]!), hourly: more(p.hourly, e[1]!), daily: more(p.daily, e[2]!), weekly: more(p.weekly, e[3]!),
        monthly: more(p.monthly, e[4]!), yearly: more(p.yearly, e[5]!),
        within: longer(p.within, e[6]!), withinHourly: longer(p.withinHourly, e[7]!), withinDaily: longer(p.withinDaily, e[8]!),
        withinWeekly: longer(p.withinWeekly, e[9]!), withinMonthly: longer(p.withinMonthly, e[10]!), withinYearly: longer(p.withinYearly, e[11]!),
        tags: [...(p.tags ?? []), ['b']],
      };
      const removedSmall = new Set(applyPolicy(l, p, { timeZone: tz, now }).remove.map((x) => x.id));
      for (const x of applyPolicy(l, bigger, { timeZone: tz, now }).remove) expect(removedSmall.has(x.id)).toBe(true);
    }), { numRuns: 150 });
  });
});

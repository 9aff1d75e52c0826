import { describe, expect, it } from 'vitest';
import { filterSnapshots, findSnapshot, type SnapshotEntry } from '../../src/engine/snapshot-select.js';

const snap = (id: string, time: string, hostname: string, tags: string[], paths: string[]): SnapshotEntry => ({
  id: id.padEnd(64, '0'),
  snapshot: { version: 1, time, tree: 'a'.repeat(64), paths, hostname, tags, source: { type: 'files' } },
});

const all = [
  snap('aa1', '2026-01-02T00:00:00Z', 'web', ['daily'], ['/etc']),
  snap('aa2', '2026-01-03T00:00:00Z', 'db', ['daily', 'db'], ['/var/lib']),
  snap('bb1', '2026-01-01T00:00:00Z', 'web', [], ['/etc', '/srv']),
];

describe('snapshot selection', () => {
  it('latest, narrowed by host, tags and paths', () => {
    expect(findSnapshot(all, 'latest').id.startsWith('aa2')).toBe(true);
    expect(findSnapshot(all, 'latest', { hosts: ['web'] }).id.startsWith('aa1')).toBe(true);
    expect(findSnapshot(all, 'latest', { tags: ['db,daily'] }).id.startsWith('aa2')).toBe(true);
    expect(findSnapshot(all, 'latest', { paths: ['/srv', '/etc'] }).id.startsWith('bb1')).toBe(true);
    expect(() => findSnapshot(all, 'latest', { hosts: ['none'] })).toThrow('no snapshot found for host none');
    expect(filterSnapshots(all, { tags: ['daily'] }).map((e) => e.id.slice(0, 3))).toEqual(['aa1', 'aa2']);
  });

  it('ids and unique prefixes; ambiguous and unknown ones are refused', () => {
    expect(findSnapshot(all, 'bb').id.startsWith('bb1')).toBe(true);
    expect(() => findSnapshot(all, 'aa')).toThrow(/ambiguous/);
    expect(() => findSnapshot(all, 'cc')).toThrow('no snapshot matches cc');
    expect(() => findSnapshot(all, '../x')).toThrow(/invalid snapshot id/);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IndexDb } from '../../src/cache/index-db.js';
import type { IndexFile } from '../../src/repo/formats.js';
import { tmpDir } from '../helpers/repo.js';

const hex = (c: string) => c.repeat(64);

function indexWith(packId: string, blobIds: string[], supersedes: string[] = []): IndexFile {
  return {
    version: 1,
    supersedes,
    packs: [{ id: packId, type: 'data', size: 100, blobs: blobIds.map((id, i) => ({ id, offset: i * 10, length: 10, raw_length: 8 })) }],
  };
}

describe('the SQLite index cache', () => {
  it('adds, looks up, and forgets index files', () => {
    const db = IndexDb.open(tmpDir());
    db.applyIndexChanges([{ id: hex('1'), file: indexWith(hex('a'), [hex('b'), hex('c')]) }], []);
    expect(db.has(Buffer.from(hex('b'), 'hex'))).toBe(true);
    expect(db.lookup(Buffer.from(hex('c'), 'hex'))).toEqual([{ packId: hex('a'), type: 0, offset: 10, length: 10, rawLength: 8 }]);
    expect(db.packs()).toEqual([{ id: hex('a'), type: 0, size: 100 }]);
    db.applyIndexChanges([], [hex('1')]);
    expect(db.has(Buffer.from(hex('b'), 'hex'))).toBe(false);
    expect(db.stats()).toMatchObject({ indexFiles: 0, packs: 0, blobs: 0 });
    db.close();
  });

  it('hides the entries of superseded index files, whichever arrives first', () => {
    const db = IndexDb.open(tmpDir());
    db.applyIndexChanges([{ id: hex('1'), file: indexWith(hex('a'), [hex('b')]) }], []);
    db.applyIndexChanges([{ id: hex('2'), file: indexWith(hex('d'), [hex('e')], [hex('1')]) }], []);
    expect(db.has(Buffer.from(hex('b'), 'hex'))).toBe(false);
    expect(db.has(Buffer.from(hex('e'), 'hex'))).toBe(true);
    // the superseded file is still known, so it is not fetched again
    expect(db.indexIds()).toEqual(new Set([hex('1'), hex('2')]));

    const db2 = IndexDb.open(tmpDir());
    db2.applyIndexChanges([{ id: hex('2'), file: indexWith(hex('d'), [hex('e')], [hex('1')]) }], []);
    db2.applyIndexChanges([{ id: hex('1'), file: indexWith(hex('a'), [hex('b')]) }], []);
    expect(db2.has(Buffer.from(hex('b'), 'hex'))).toBe(false);
    db.close();
    db2.close();
  });

  it('keeps a blob found in two packs as two locations', () => {
    const db = IndexDb.open(tmpDir());
    db.applyIndexChanges(
      [
        { id: hex('1'), file: indexWith(hex('a'), [hex('b')]) },
        { id: hex('2'), file: indexWith(hex('c'), [hex('b')]) },
      ],
      [],
    );
    expect(db.lookup(Buffer.from(hex('b'), 'hex')).map((l) => l.packId).sort()).toEqual([hex('a'), hex('c')]);
    db.close();
  });

  it('replaces a damaged database file instead of failing (it is only a cache)', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'index.db'), 'this is not sqlite '.repeat(100));
    const db = IndexDb.open(dir);
    expect(db.stats().blobs).toBe(0);
    db.close();
  });

  it('mirrors snapshots', () => {
    const db = IndexDb.open(tmpDir());
    db.applySnapshotChanges([{ id: hex('5'), time: '2026-01-01T00:00:00Z', json: '{"a":1}' }], []);
    expect(db.snapshotJson(hex('5'))).toBe('{"a":1}');
    db.applySnapshotChanges([], [hex('5')]);
    expect(db.snapshotIds().size).toBe(0);
    db.close();
  });
});

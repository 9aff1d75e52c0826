import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { openBlob, sealBlob, type SealedBlob } from '../../src/repo/blob.js';
import { blobId, deriveSubkeys } from '../../src/repo/keys-derive.js';
import { SealPool, defaultWorkerUrl } from '../../src/repo/seal-pool.js';
import { pseudoRandom } from '../helpers/repo.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const keys = deriveSubkeys(crypto.randomBytes(32));

function sqlLines(bytes: number, seed: number): Buffer {
  const parts: string[] = [];
  let n = 0;
  let x = seed;
  while (n < bytes) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const line = `INSERT INTO t (id, name, amount) VALUES (${x % 100000}, 'user${x % 977}', ${(x % 10000) / 100});\n`;
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

/** Chunks of every kind the write path produces: views into a larger buffer, odd and tiny sizes, empty. */
function inputs(): Buffer[] {
  const big = pseudoRandom(6 * 1024 * 1024, 7);
  const text = sqlLines(3 * 1024 * 1024, 11);
  return [
    big.subarray(0, 1024 * 1024),
    text.subarray(0, 700_000),
    Buffer.alloc(0),
    big.subarray(1024 * 1024 + 3, 1024 * 1024 + 3 + 100), // tiny: comes back from the small-buffer pool
    Buffer.alloc(2 * 1024 * 1024, 0x41),
    text.subarray(700_000),
    big.subarray(2 * 1024 * 1024), // a view of 4 MiB at an offset
    Buffer.from(pseudoRandom(3000, 5)),
    pseudoRandom(1_500_000, 9), // owns its ArrayBuffer
  ];
}

function expectSameAsInline(chunks: Buffer[], got: SealedBlob[]): void {
  expect(got.length).toBe(chunks.length);
  got.forEach((b, i) => {
    const data = chunks[i]!;
    const inline = sealBlob(keys, 'data', data);
    expect(b.type).toBe('data');
    expect(b.id.equals(inline.id)).toBe(true);
    expect(b.rawLength).toBe(data.length);
    // compression is deterministic, only the nonce differs: same length, same plaintext
    expect(b.sealed.length).toBe(inline.sealed.length);
    expect(openBlob(keys, b.id, b.sealed, 'test').equals(data)).toBe(true);
  });
}

describe('SealPool', () => {
  const pools: SealPool[] = [];
  afterAll(async () => {
    for (const p of pools) await p.close();
  });

  it('finds the compiled worker from the TypeScript sources', () => {
    const url = defaultWorkerUrl();
    expect(url.href).toBe(pathToFileURL(path.join(ROOT, 'dist/repo/seal-worker.js')).href);
  });

  it.each([0, 1])('workers=%i seals inline', async (workers) => {
    const pool = await SealPool.create(keys, { workers });
    pools.push(pool);
    expect(pool.size).toBe(0);
    const chunks = inputs();
    const got = await Promise.all(chunks.map((c) => pool.seal(c)));
    expectSameAsInline(chunks, got);
  });

  it.each([2, 3])('workers=%i: results in submission order, identical to inline sealBlob', async (workers) => {
    const pool = await SealPool.create(keys, { workers });
    pools.push(pool);
    expect(pool.size).toBe(workers);
    const chunks = inputs();
    const copies = chunks.map((c) => Buffer.from(c));
    const got = await Promise.all(chunks.map((c) => pool.seal(c)));
    expectSameAsInline(chunks, got);
    // the caller's buffers were copied, not transferred or modified
    chunks.forEach((c, i) => expect(c.equals(copies[i]!)).toBe(true));
    // again, so transfer buffers are reused
    const again = await Promise.all(chunks.map((c) => pool.seal(c)));
    expectSameAsInline(chunks, again);
  });

  it('accepts a precomputed id and a tree type', async () => {
    const pool = await SealPool.create(keys, { workers: 2 });
    pools.push(pool);
    const data = sqlLines(200_000, 3);
    const id = blobId(keys.blobId, data);
    const b = await pool.seal(data, { id, type: 'tree' });
    expect(b.type).toBe('tree');
    expect(b.id.equals(id)).toBe(true);
    expect(openBlob(keys, id, b.sealed, 'test').equals(data)).toBe(true);
  });

  it('sealFile: a worker reads a small file whole and seals it, with its stat; refuses what is not a plain small file', async () => {
    const pool = await SealPool.create(keys, { workers: 2 });
    pools.push(pool);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-sealfile-'));
    try {
      const files: Array<[string, Buffer]> = [
        ['text.sql', sqlLines(150_000, 4)],
        ['random.bin', pseudoRandom(200_000, 6)],
        ['one-byte', Buffer.from('x')],
        ['4096', pseudoRandom(4096, 8)], // exactly one read of the minimum size
      ];
      for (const [name, data] of files) await fs.writeFile(path.join(dir, name), data);
      const limit = 256 * 1024;
      const got = await Promise.all(files.map(([name, data]) => pool.sealFile(Buffer.from(path.join(dir, name)), limit, data.length)));
      got.forEach((r, i) => {
        const data = files[i]![1];
        expect(r).not.toBeNull();
        expect(r!.size).toBe(data.length);
        expect(r!.changed).toBe(false);
        expect(r!.reads).toBe(1);
        expect(Number(r!.stat.size)).toBe(data.length);
        expectSameAsInline([data], [r!.blob!]);
      });
      const st = await fs.stat(path.join(dir, 'text.sql'), { bigint: true });
      expect(got[0]!.stat.ino).toBe(st.ino);
      expect(got[0]!.stat.mtimeNs).toBe(st.mtimeNs);
      expect(got[0]!.stat.mode).toBe(st.mode);

      await fs.writeFile(path.join(dir, 'empty'), '');
      const empty = await pool.sealFile(Buffer.from(path.join(dir, 'empty')), limit, 0);
      expect(empty?.size).toBe(0);
      expect(empty?.blob).toBeNull();

      // grown past the limit since the walk: nothing stored, the caller reads it
      await fs.writeFile(path.join(dir, 'big'), pseudoRandom(limit + 10, 2));
      expect(await pool.sealFile(Buffer.from(path.join(dir, 'big')), limit, 100)).toBeNull();

      await expect(pool.sealFile(Buffer.from(path.join(dir, 'missing')), limit, 1)).rejects.toMatchObject({ code: 'ENOENT' });
      await fs.symlink('text.sql', path.join(dir, 'link'));
      await expect(pool.sealFile(Buffer.from(path.join(dir, 'link')), limit, 1)).rejects.toMatchObject({ code: 'ELOOP' });
      await expect(pool.sealFile(Buffer.from(dir), limit, 1)).rejects.toThrow('not a regular file any more');
      await run('mkfifo', [path.join(dir, 'fifo')]);
      await expect(pool.sealFile(Buffer.from(path.join(dir, 'fifo')), limit, 1)).rejects.toThrow('not a regular file any more');
      // the pool still works after the failures
      const again = await pool.sealFile(Buffer.from(path.join(dir, 'one-byte')), limit, 1);
      expect(again?.blob?.rawLength).toBe(1);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('transfers a buffer the caller gives up instead of copying it', async () => {
    const pool = await SealPool.create(keys, { workers: 2 });
    pools.push(pool);
    const data = pseudoRandom(1024 * 1024, 3);
    const expected = Buffer.from(data);
    const b = await pool.seal(data, { transfer: true });
    expect(data.length).toBe(0); // detached
    expect(pool.stats.transferred).toBe(1);
    expect(openBlob(keys, b.id, b.sealed, 'test').equals(expected)).toBe(true);
  });

  it.each([0, 2])('assemblePack joins and hashes a pack (workers=%i)', async (workers) => {
    const pool = await SealPool.create(keys, { workers });
    pools.push(pool);
    const sealed = await Promise.all(inputs().map((c) => pool.seal(c)));
    const header = Buffer.from('header bytes');
    const parts = [...sealed.map((b) => b.sealed), header, header.subarray(0, 4)];
    const expected = Buffer.concat(parts);
    const { bytes, id } = await pool.assemblePack(parts, expected.length);
    expect(bytes.equals(expected)).toBe(true);
    expect(id).toBe(crypto.createHash('sha256').update(expected).digest('hex'));
    expect(pool.packAssembler() === null).toBe(workers === 0);
  });

  it('sealOrdered keeps order and bounds the work in flight', async () => {
    const pool = await SealPool.create(keys, { workers: 2, maxInFlight: 3 });
    pools.push(pool);
    const base = pseudoRandom(2 * 1024 * 1024, 1);
    const chunks = Array.from({ length: 24 }, (_, i) => {
      const c = Buffer.from(base.subarray(i * 50_000, i * 50_000 + 100_000 + i * 7919));
      c.writeUInt32LE(i, 0);
      return c;
    });
    let maxSeen = 0;
    const got: SealedBlob[] = [];
    for await (const b of pool.sealOrdered(chunks)) {
      maxSeen = Math.max(maxSeen, pool.inFlight);
      got.push(b);
    }
    expect(maxSeen).toBeLessThanOrEqual(3);
    // transfer buffers come back from the workers and are reused
    expect(pool.stats.buffersAllocated).toBeLessThanOrEqual(3);
    expectSameAsInline(chunks, got);
  });

  it('refuses work after close', async () => {
    const pool = await SealPool.create(keys, { workers: 2 });
    const p = pool.seal(pseudoRandom(100_000, 2));
    await pool.close(); // waits for the chunk in flight
    await expect(p).resolves.toBeDefined();
    await expect(pool.seal(Buffer.from('x'))).rejects.toThrow(/closed/);
    await pool.close();
  });

  it.each([
    ['after close()', true],
    ['when left idle without close()', false],
  ])('node exits %s (no worker keeps it alive)', async (_label, close) => {
    const script = `
      import { SealPool } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/repo/seal-pool.js')).href)};
      import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
      const pool = await SealPool.create({ encryption: crypto.randomBytes(32), blobId: crypto.randomBytes(32) }, { workers: 2 });
      const r = await Promise.all([1, 2, 3, 4].map((i) => pool.seal(crypto.randomBytes(i * 300000))));
      if (r.length !== 4) process.exit(3);
      ${close ? 'await pool.close();' : ''}
      console.log('done', pool.size);
    `;
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-pool-exit-'));
    const file = path.join(dir, 'exit.mjs');
    await fs.writeFile(file, script);
    const { stdout } = await run(process.execPath, [file], { timeout: 30_000 });
    await fs.rm(dir, { recursive: true, force: true });
    expect(stdout.trim()).toBe('done 2');
  });
});

describe('seal pool: openRange (restore)', () => {
  for (const workers of [0, 2]) {
    it(`opens a range of sealed blobs and names the damaged one (${workers} workers)`, async () => {
      const pool = await SealPool.create(keys, { workers });
      try {
        const datas = inputs();
        const sealed = datas.map((d) => sealBlob(keys, 'data', d));
        const gap = Buffer.alloc(17, 0xee); // unneeded bytes between blobs, read through
        const parts: Buffer[] = [];
        const blobs: Array<{ id: Buffer; offset: number; length: number; rawLength: number }> = [];
        let pos = 0;
        for (const s of sealed) {
          blobs.push({ id: s.id, offset: pos, length: s.sealed.length, rawLength: s.rawLength });
          parts.push(s.sealed, gap);
          pos += s.sealed.length + gap.length;
        }
        const range = Buffer.concat(parts);
        for (let round = 0; round < 2; round++) { // the second round reuses the released buffers
          const input = Buffer.from(range);
          const opened = await pool.openRange(input, blobs, 'test-pack');
          let at = 0;
          for (let i = 0; i < datas.length; i++) {
            expect(opened.errors[i]).toBeNull();
            expect(opened.out.subarray(at, at + datas[i]!.length).equals(datas[i]!)).toBe(true);
            at += datas[i]!.length;
          }
          opened.release();
        }
        const bad = Buffer.from(range);
        bad[blobs[1]!.offset + 30]! ^= 1;
        const opened = await pool.openRange(bad, blobs, 'test-pack');
        expect(opened.errors[0]).toBeNull();
        expect(opened.errors[1]).toMatch(/authentication failed/);
        expect(opened.errors[2]).toBeNull();
        // a blob listed under another blob's id fails its id check / authentication
        const swapped = blobs.map((b, i) => (i === 0 ? { ...b, id: blobs[4]!.id } : b));
        const opened2 = await pool.openRange(Buffer.from(range), swapped, 'test-pack');
        expect(opened2.errors[0]).not.toBeNull();
      } finally {
        await pool.close();
      }
    });
  }
});

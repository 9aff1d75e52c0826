/**
 * Issue 9: a 503 SlowDown with `Retry-After: N` is retried no sooner than N seconds later. The
 * proxy in front of the real S3 server answers the first PUT of every pack and index file with
 * SlowDown + Retry-After (1 s and 2 s) and records when each request arrived and when each answer
 * was sent; the retry of the same object must arrive at least N s after the SlowDown left.
 * (Without Retry-After the first retry waits a random 0-200 ms.)
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAST_KDF, runCli, cliOk } from '../helpers/cli.js';
import { deleteBucket, makeTempDir, randomBucketName, s3Endpoint } from '../helpers/storage-backends.js';
import { expectRestoresTo, treeState } from '../helpers/tree-state.js';
import { startFaultProxy, type FaultProxy } from './proxy.js';

const buckets: string[] = [];
const proxies: FaultProxy[] = [];
afterAll(async () => {
  await Promise.allSettled(proxies.map((p) => p.close()));
  await Promise.allSettled(buckets.map((b) => deleteBucket(s3Endpoint(), b)));
});

describe('Retry-After', () => {
  it('a SlowDown with Retry-After is retried no sooner than the store asked', async () => {
    const dir = await makeTempDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(src, `r${i}.bin`), randomBytes(6 * 1024 * 1024));
    const bucket = randomBucketName();
    buckets.push(bucket);
    const proxy = await startFaultProxy(s3Endpoint(), 1, 0);
    proxies.push(proxy);
    fs.writeFileSync(path.join(dir, 'pw'), 'secret\n', { mode: 0o600 });
    const common = { LIFEBOAT_PASSWORD_FILE: path.join(dir, 'pw'), LIFEBOAT_CACHE_DIR: path.join(dir, 'cache') };
    const direct = { ...common, LIFEBOAT_REPOSITORY: `s3:${s3Endpoint()}/${bucket}` };
    const faulty = { ...common, LIFEBOAT_REPOSITORY: `s3:${proxy.url}/${bucket}` };
    expect((await runCli(['init', ...FAST_KDF], direct)).code).toBe(0);

    // the first PUT of each pack and index object gets SlowDown, alternately with Retry-After 1 and 2
    const seen = new Set<string>();
    const asked = new Map<string, number>();
    proxy.decide = (req) => {
      const url = req.url ?? '';
      if (req.method !== 'PUT' || !/\/(data|index)\//.test(url) || seen.has(url)) return null;
      seen.add(url);
      asked.set(url, seen.size % 2 === 0 ? 2 : 1);
      return 'slowdown';
    };
    proxy.retryAfter = (req) => String(asked.get(req.url ?? '') ?? 1);
    const state = treeState(src);
    await cliOk(['backup', src], faulty);

    const slowed = proxy.log.filter((r) => r.fault === 'slowdown');
    expect(slowed.length).toBeGreaterThanOrEqual(3); // several packs and an index
    for (const s of slowed) {
      const retry = proxy.log.find((r) => r.method === 'PUT' && r.url === s.url && r.arrived >= s.arrived && r !== s);
      expect(retry, `${s.url} was retried`).toBeDefined();
      const waited = retry!.arrived - s.answered!;
      expect(waited, `${s.url}: retried ${waited} ms after a SlowDown with Retry-After ${asked.get(s.url)}`).toBeGreaterThanOrEqual(asked.get(s.url)! * 1000);
    }
    const snaps = JSON.parse(await cliOk(['snapshots', '--json'], direct)) as Array<{ id: string }>;
    await expectRestoresTo(direct, snaps[0]!.id, src, state, path.join(dir, 'restore'));
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

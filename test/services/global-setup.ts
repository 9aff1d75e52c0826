/**
 * vitest globalSetup: starts two Swift + s3api servers on free loopback ports with
 * test/services/s3.sh, one as OpenStack clouds run it and one with SWIFT_S3_COMPAT=1
 * (conditional create and other shims), and publishes them to the test workers through
 * process.env (forked workers inherit it) and `inject()`:
 *
 *   LIFEBOAT_TEST_S3_ENDPOINT         plain server
 *   LIFEBOAT_TEST_S3_COMPAT_ENDPOINT  compat server
 *   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
 *
 * When LIFEBOAT_TEST_S3_ENDPOINT is already set, nothing is started. A server that
 * cannot start fails the run (tests are never skipped for it).
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { pidAlive } from '../../src/util/process.js';
import { startDatabases } from './databases.js';
import { parseExports } from './exports.js';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    s3CompatEndpoint: string;
  }
}

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./s3.sh', import.meta.url));
const DIR_PREFIX = 'lifeboat-s3-';

async function script(args: string[], dir: string, compat: boolean): Promise<string> {
  try {
    const { stdout } = await run('bash', [SCRIPT, ...args], {
      env: { ...process.env, SWIFT_S3_DIR: dir, SWIFT_S3_COMPAT: compat ? '1' : '0' },
      timeout: 600_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr ?? '';
    throw new Error(`test/services/s3.sh ${args.join(' ')} failed for ${dir}:\n${stderr.trim()}`, { cause: e });
  }
}


/** Stops servers left behind by test runs that were killed before their teardown. */
async function reapStale(): Promise<void> {
  const entries = await fs.readdir(os.tmpdir()).catch(() => [] as string[]);
  for (const entry of entries) {
    const pid = Number(new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(entry)?.[1]);
    if (!pid || pidAlive(pid)) continue;
    const base = path.join(os.tmpdir(), entry);
    await Promise.all(
      (['plain', 'compat'] as const).map((k) => script(['clean'], path.join(base, k), k === 'compat').catch(() => '')),
    );
    await fs.rm(base, { recursive: true, force: true });
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  // PostgreSQL and MariaDB (test/services/databases.ts) start alongside the S3 servers
  const databases = startDatabases();
  databases.catch(() => undefined);
  const given = process.env.LIFEBOAT_TEST_S3_ENDPOINT;
  if (given) {
    project.provide('s3Endpoint', given);
    project.provide('s3CompatEndpoint', process.env.LIFEBOAT_TEST_S3_COMPAT_ENDPOINT ?? '');
    return (await databases).teardown;
  }
  await reapStale();
  const base = await fs.mkdtemp(path.join(os.tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  const dirs = { plain: path.join(base, 'plain'), compat: path.join(base, 'compat') };
  const teardown = async (): Promise<void> => {
    const results = await Promise.allSettled([script(['clean'], dirs.plain, false), script(['clean'], dirs.compat, true)]);
    await fs.rm(base, { recursive: true, force: true });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  let plain: Record<string, string>;
  let compat: Record<string, string>;
  try {
    const started = await Promise.allSettled([script(['start'], dirs.plain, false), script(['start'], dirs.compat, true)]);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const [p, c] = started as PromiseFulfilledResult<string>[];
    plain = parseExports(p?.value ?? '');
    compat = parseExports(c?.value ?? '');
    if (!plain.S3_ENDPOINT || !compat.S3_ENDPOINT) throw new Error('test/services/s3.sh printed no S3_ENDPOINT');
  } catch (e) {
    await teardown().catch(() => undefined);
    await (await databases.catch(() => null))?.teardown().catch(() => undefined);
    throw e;
  }
  const dbServices = await databases.catch(async (e: unknown) => {
    await teardown().catch(() => undefined);
    throw e;
  });
  const env = {
    LIFEBOAT_TEST_S3_ENDPOINT: plain.S3_ENDPOINT,
    LIFEBOAT_TEST_S3_COMPAT_ENDPOINT: compat.S3_ENDPOINT,
    AWS_ACCESS_KEY_ID: plain.AWS_ACCESS_KEY_ID ?? '',
    AWS_SECRET_ACCESS_KEY: plain.AWS_SECRET_ACCESS_KEY ?? '',
    AWS_REGION: plain.AWS_REGION ?? 'us-east-1',
  };
  Object.assign(process.env, env);
  project.provide('s3Endpoint', env.LIFEBOAT_TEST_S3_ENDPOINT);
  project.provide('s3CompatEndpoint', env.LIFEBOAT_TEST_S3_COMPAT_ENDPOINT);
  return async () => {
    const results = await Promise.allSettled([teardown(), dbServices.teardown()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
}

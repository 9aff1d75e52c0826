/**
 * The database servers for the tests, started by the vitest global setup in parallel with the S3
 * servers: a private PostgreSQL 15 (test/services/postgres.sh) and MariaDB 10.11
 * (test/services/mariadb.sh) on free loopback ports, in a temporary directory named after this
 * process so a later run can reap them when this one was killed. Their coordinates are published
 * through process.env (PG_TEST_* and MARIADB_TEST_*). When PG_TEST_PORT and MARIADB_TEST_PORT are
 * already set, nothing is started. A server that cannot start fails the run.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pidAlive } from '../../src/util/process.js';
import { parseExports } from './exports.js';

const run = promisify(execFile);
const DIR_PREFIX = 'lifeboat-db-';
const SERVICES = [
  { name: 'postgres', script: fileURLToPath(new URL('./postgres.sh', import.meta.url)), dirVar: 'PG_TEST_DIR' },
  { name: 'mariadb', script: fileURLToPath(new URL('./mariadb.sh', import.meta.url)), dirVar: 'MARIADB_TEST_DIR' },
] as const;

async function script(svc: (typeof SERVICES)[number], cmd: string, dir: string): Promise<string> {
  try {
    const { stdout } = await run('bash', [svc.script, cmd], { env: { ...process.env, [svc.dirVar]: dir }, timeout: 900_000, maxBuffer: 4 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr ?? '';
    throw new Error(`test/services/${svc.name}.sh ${cmd} failed for ${dir}:\n${stderr.trim()}`, { cause: e });
  }
}


async function reapStale(): Promise<void> {
  const entries = await fs.readdir(os.tmpdir()).catch(() => [] as string[]);
  for (const entry of entries) {
    const pid = Number(new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(entry)?.[1]);
    if (!pid || pidAlive(pid)) continue;
    const base = path.join(os.tmpdir(), entry);
    await Promise.all(SERVICES.map((s) => script(s, 'clean', path.join(base, s.name)).catch(() => '')));
    await fs.rm(base, { recursive: true, force: true });
  }
}

export interface DatabaseServices {
  teardown: () => Promise<void>;
}

export async function startDatabases(): Promise<DatabaseServices> {
  if (process.env.PG_TEST_PORT && process.env.MARIADB_TEST_PORT) return { teardown: async () => undefined };
  await reapStale();
  const base = await fs.mkdtemp(path.join(os.tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  const teardown = async (): Promise<void> => {
    const results = await Promise.allSettled(SERVICES.map((s) => script(s, 'clean', path.join(base, s.name))));
    await fs.rm(base, { recursive: true, force: true });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  const started = await Promise.allSettled(SERVICES.map((s) => script(s, 'start', path.join(base, s.name))));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await teardown().catch(() => undefined);
    throw failed.reason;
  }
  const env = Object.assign({}, ...started.map((r) => parseExports((r as PromiseFulfilledResult<string>).value))) as Record<string, string>;
  if (!env.PG_TEST_PORT || !env.MARIADB_TEST_PORT) {
    await teardown().catch(() => undefined);
    throw new Error('test/services/postgres.sh or mariadb.sh printed no port');
  }
  Object.assign(process.env, env);
  return { teardown };
}

/**
 * Day-to-day dedup of PostgreSQL dumps: lifeboat vs restic 0.14 `--stdin`, on the same two dumps.
 *
 *   npm run bench:db -- [--rows N] [--work DIR] [--keep] [--restic /usr/bin/restic]
 *
 * 1. A private PostgreSQL (test/services/postgres.sh, or the server named by PG_TEST_HOST/PORT/
 *    USER/PASSWORD) gets a generated database: `orders` (--rows rows, default 1 800 000) and
 *    `customers` (rows / 10), a plain dump of ≈ 200 MB.
 * 2. Day 1: `pg_dump --format=plain` to a file. Then, for each scenario, a copy of the database
 *    (CREATE DATABASE … TEMPLATE) is changed and dumped again (day 2):
 *      clustered: 1 % of the rows changed where applications usually change them — the newest
 *                 1 % of orders updated (status, amount), plus 0.1 % new orders;
 *      batches:   1 % of the rows updated in 20 contiguous ranges at spread-out places (a batch
 *                 job, a migration of some accounts);
 *      scattered: 1 % of the rows updated uniformly (every 100th order) — the worst case for any
 *                 content-defined chunker: every ~1 MiB chunk holds a changed row.
 * 3. For each tool and scenario, a fresh repository: back up day 1, then day 2, both through
 *    stdin (`lifeboat backup --stdin --stdin-filename db/bench/bench.sql`, the same stream path as
 *    `lifeboat db dump`; `restic backup --stdin --stdin-filename bench.sql`, repository v2,
 *    compression auto). Reported: the repository's growth for day 2 (`du -sb`), the tool's own
 *    "data added" figure, and wall/CPU time of each backup (/usr/bin/time -v).
 * Prints a table and writes bench/results/db-dedup-<time>.json.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { timed, type Measure } from './measure.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/cli/main.js');
const PASSWORD = 'bench-password';

interface Args {
  rows: number;
  work: string;
  keep: boolean;
  restic: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { rows: 1_800_000, work: '', keep: false, restic: '/usr/bin/restic' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => argv[++i] ?? (() => { throw new Error(`${k} needs a value`); })();
    if (k === '--rows') a.rows = Number(v());
    else if (k === '--work') a.work = path.resolve(v());
    else if (k === '--keep') a.keep = true;
    else if (k === '--restic') a.restic = v();
    else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

interface Pg {
  host: string;
  port: string;
  user: string;
  password: string;
  stop?: () => void;
}

function startPostgres(work: string): Pg {
  if (process.env.PG_TEST_PORT) {
    return { host: process.env.PG_TEST_HOST ?? '127.0.0.1', port: process.env.PG_TEST_PORT, user: process.env.PG_TEST_USER ?? 'postgres', password: process.env.PG_TEST_PASSWORD ?? '' };
  }
  const dir = path.join(work, 'pg');
  const script = path.join(ROOT, 'test/services/postgres.sh');
  const out = execFileSync('bash', [script, 'start'], { env: { ...process.env, PG_TEST_DIR: dir }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const env: Record<string, string> = {};
  for (const m of out.matchAll(/^export ([A-Z_]+)=(.*)$/gm)) env[m[1]!] = m[2]!;
  return {
    host: env.PG_TEST_HOST!,
    port: env.PG_TEST_PORT!,
    user: env.PG_TEST_USER!,
    password: env.PG_TEST_PASSWORD!,
    stop: () => execFileSync('bash', [script, 'clean'], { env: { ...process.env, PG_TEST_DIR: dir }, stdio: 'inherit' }),
  };
}

function psql(pg: Pg, db: string, sql: string): string {
  return execFileSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', pg.host, '-p', pg.port, '-U', pg.user, '-d', db], {
    input: sql,
    env: { ...process.env, PGPASSWORD: pg.password, PGOPTIONS: '-c client_min_messages=warning' },
    encoding: 'utf8',
  });
}

function pgDump(pg: Pg, db: string, file: string): void {
  execFileSync('sh', ['-c', `pg_dump --format=plain -h "$H" -p "$P" -U "$U" -d "$D" > "$F"`], {
    env: { ...process.env, PGPASSWORD: pg.password, H: pg.host, P: pg.port, U: pg.user, D: db, F: file },
    stdio: 'inherit',
  });
}

function generate(pg: Pg, rows: number): void {
  psql(pg, 'postgres', 'DROP DATABASE IF EXISTS bench');
  psql(pg, 'postgres', 'CREATE DATABASE bench');
  psql(
    pg,
    'bench',
    `
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, city text, created timestamptz);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, status text, amount numeric(12,2), created timestamptz, note text);
INSERT INTO customers SELECT g, 'Customer ' || g, 'c' || g || '@example.org', (ARRAY['Geneva','Lyon','Oslo','Porto','Turin'])[1 + g % 5],
  timestamptz '2024-01-01' + g * interval '37 seconds' FROM generate_series(1, ${Math.floor(rows / 10)}) g;
INSERT INTO orders SELECT g, 1 + (g::bigint * 7919) % ${Math.floor(rows / 10)}, (ARRAY['new','paid','shipped','delivered'])[1 + g % 4],
  (g::bigint * 37 % 100000) / 100.0, timestamptz '2024-01-01' + g * interval '11 seconds', md5(g::text) || ' ' || substr(md5((g * 3)::text), 1, 12 + g % 20)
  FROM generate_series(1, ${rows}) g;
VACUUM ANALYZE;
`,
  );
}

const SCENARIOS: Record<string, (rows: number) => string> = {
  clustered: (rows) => `
UPDATE orders SET status = 'delivered', amount = amount + 1 WHERE id > ${Math.floor(rows * 0.99)};
INSERT INTO orders SELECT g, 1 + g % 1000, 'new', 9.99, timestamptz '2026-01-01' + g * interval '1 second', md5(g::text)
  FROM generate_series(${rows + 1}, ${rows + Math.floor(rows * 0.001)}) g;`,
  batches: (rows) => {
    const span = Math.floor(rows * 0.0005);
    const starts = Array.from({ length: 20 }, (_, i) => Math.floor(((i * 7919 + 104729) % 997) / 997 * (rows - span)));
    return starts.map((s) => `UPDATE orders SET status = 'delivered', amount = amount + 1 WHERE id > ${s} AND id <= ${s + span};`).join('\n');
  },
  scattered: () => `UPDATE orders SET status = 'delivered', amount = amount + 1 WHERE id % 100 = 0;`,
};

function du(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
}

/** Runs a backup of `file` through stdin under /usr/bin/time; returns timing and the tool's JSON summary. */
async function backupStdin(tool: 'lifeboat' | 'restic', restic: string, repo: string, cache: string, file: string): Promise<{ m: Measure; summary: Record<string, unknown> }> {
  const env = { ...process.env, RESTIC_PASSWORD: PASSWORD, RESTIC_REPOSITORY: repo, RESTIC_CACHE_DIR: cache, LIFEBOAT_PASSWORD: PASSWORD, LIFEBOAT_REPOSITORY: repo, LIFEBOAT_CACHE_DIR: cache };
  const args =
    tool === 'lifeboat'
      ? [process.execPath, CLI, 'backup', '--stdin', '--stdin-filename', 'db/bench/bench.sql', '--json']
      : [restic, 'backup', '--stdin', '--stdin-filename', 'bench.sql', '--json'];
  const summaryFile = path.join(path.dirname(repo), `${tool}-summary.json`);
  const sh = `"$@" < "$IN" | tail -n 1 > "$OUT"`;
  const m = await timed('sh', ['-c', sh, 'sh', ...args], { ...env, IN: file, OUT: summaryFile });
  return { m, summary: JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as Record<string, unknown> };
}

function init(tool: 'lifeboat' | 'restic', restic: string, repo: string, cache: string): void {
  const env = { ...process.env, RESTIC_PASSWORD: PASSWORD, LIFEBOAT_PASSWORD: PASSWORD, LIFEBOAT_CACHE_DIR: cache, RESTIC_CACHE_DIR: cache };
  if (tool === 'lifeboat') execFileSync(process.execPath, [CLI, 'init', '--repo', repo], { env, stdio: 'ignore' });
  else execFileSync(restic, ['init', '--repo', repo], { env, stdio: 'ignore' });
}

interface Row {
  scenario: string;
  tool: string;
  day1Stored: number;
  day2Added: number;
  day2AddedPct: number;
  toolReportedDay2: unknown;
  day1: Measure;
  day2: Measure;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const work = args.work || fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-db-'));
  fs.mkdirSync(work, { recursive: true });
  const pg = startPostgres(work);
  const rows: Row[] = [];
  const sizes: Record<string, number> = {};
  try {
    console.error(`generating ${args.rows} orders …`);
    generate(pg, args.rows);
    const day1 = path.join(work, 'day1.sql');
    pgDump(pg, 'bench', day1);
    sizes.day1 = fs.statSync(day1).size;
    console.error(`day 1 dump: ${(sizes.day1 / 1e6).toFixed(1)} MB`);
    for (const [name, sql] of Object.entries(SCENARIOS)) {
      psql(pg, 'postgres', `DROP DATABASE IF EXISTS bench_${name}; CREATE DATABASE bench_${name} TEMPLATE bench`);
      psql(pg, `bench_${name}`, sql(args.rows));
      const day2 = path.join(work, `day2-${name}.sql`);
      pgDump(pg, `bench_${name}`, day2);
      sizes[`day2-${name}`] = fs.statSync(day2).size;
      psql(pg, 'postgres', `DROP DATABASE bench_${name}`);
      for (const tool of ['lifeboat', 'restic'] as const) {
        const base = path.join(work, `${tool}-${name}`);
        fs.rmSync(base, { recursive: true, force: true });
        fs.mkdirSync(base);
        const repo = path.join(base, 'repo');
        const cache = path.join(base, 'cache');
        init(tool, args.restic, repo, cache);
        const s0 = du(repo);
        const b1 = await backupStdin(tool, args.restic, repo, cache, day1);
        const s1 = du(repo);
        const b2 = await backupStdin(tool, args.restic, repo, cache, day2);
        const s2 = du(repo);
        const row: Row = {
          scenario: name,
          tool,
          day1Stored: s1 - s0,
          day2Added: s2 - s1,
          day2AddedPct: (100 * (s2 - s1)) / (s1 - s0),
          toolReportedDay2: tool === 'lifeboat' ? { data_added: b2.summary.data_added, data_added_packed: b2.summary.data_added_packed } : { data_added: b2.summary.data_added },
          day1: b1.m,
          day2: b2.m,
        };
        rows.push(row);
        console.error(`${name} ${tool}: day 1 stored ${(row.day1Stored / 1e6).toFixed(1)} MB, day 2 added ${(row.day2Added / 1e6).toFixed(2)} MB (${row.day2AddedPct.toFixed(1)} % of day 1), ${b2.m.wallS.toFixed(1)} s`);
        fs.rmSync(base, { recursive: true, force: true });
      }
    }
  } finally {
    pg.stop?.();
    if (!args.keep && !args.work) fs.rmSync(work, { recursive: true, force: true });
  }
  const mb = (n: number) => (n / 1e6).toFixed(2);
  console.log(`\ndump sizes: ${Object.entries(sizes).map(([k, v]) => `${k} ${mb(v)} MB`).join(', ')}\n`);
  console.log('| scenario | tool | day 1 stored (MB) | day 2 added (MB) | day 2 / day 1 | day 2 wall (s) | day 2 CPU (s) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.scenario} | ${r.tool} | ${mb(r.day1Stored)} | ${mb(r.day2Added)} | ${r.day2AddedPct.toFixed(1)} % | ${r.day2.wallS.toFixed(1)} | ${r.day2.cpuS.toFixed(1)} |`);
  }
  const out = path.join(ROOT, 'bench/results', `db-dedup-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ rows: args.rows, sizes, results: rows, restic: execFileSync(args.restic, ['version'], { encoding: 'utf8' }).trim(), host: { cpus: os.cpus().length } }, null, 2));
  console.log(`\nwritten ${out}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});

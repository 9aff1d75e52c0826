/**
 * `lifeboat agent` end to end, with second-granularity schedules against a local repository. Every
 * assertion waits for an outcome (polling status or the repository) with generous limits, so a
 * loaded machine makes the tests slower, not flaky.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/storage-backends.js';
import { localPacks } from '../helpers/repo.js';
import { StateDb } from '../../src/agent/state-db.js';
import { cli, job, recorder, setupRepo, startAgent, status, stopAgent, waitFor, type AgentProc } from '../agent/harness.js';

const agents: AgentProc[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) if (a.child.exitCode === null && a.child.signalCode === null) await stopAgent(a, 'SIGKILL');
});

function launch(config: string): AgentProc {
  const a = startAgent(config);
  agents.push(a);
  return a;
}

async function snapshotsTagged(config: string, tag: string): Promise<Array<{ id: string; tags: string[] }>> {
  const r = await cli(config, ['snapshots', '--json', '--tag', tag]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Array<{ id: string; tags: string[] }>;
}

describe('lifeboat agent', () => {
  it('runs jobs on schedule, serves status and Prometheus metrics, pings healthchecks, and stops cleanly on SIGTERM', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'data', 'a.txt'), 'hello\n');
    const hc = await recorder();
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}
agent:
  state_dir: state
metrics:
  listen: 127.0.0.1:0
healthchecks:
  jobs:
    data: ${hc.url}/ping/data-uuid
backups:
  data:
    paths: [${path.join(dir, 'data')}]
    tags: [files]
    schedule: "*/2 * * * * *"
`);
    const agent = launch(config);
    try {
      const s = await waitFor('two scheduled runs', async () => {
        const st = await status(config).catch(() => undefined);
        return st && job(st, 'data').runs_total >= 2 ? st : undefined;
      }, 90_000, agent);
      expect(s.agent.running).toBe(true);
      const j = job(s, 'data');
      expect(j.last_run?.result).toBe('success');
      expect(j.last_run?.trigger).toBe('schedule');
      expect(j.next_run).not.toBeNull();
      const snaps = await snapshotsTagged(config, 'job:data');
      expect(snaps.length).toBeGreaterThanOrEqual(2);
      expect(snaps[0]!.tags).toContain('files');

      // metrics over HTTP on the loopback address
      expect(s.agent.metrics).toMatch(/^127\.0\.0\.1:\d+$/);
      const res = await fetch(`http://${s.agent.metrics}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const text = await res.text();
      expect(text).toContain('# TYPE lifeboat_job_last_success_timestamp_seconds gauge');
      expect(text).toMatch(/^lifeboat_job_last_success_timestamp_seconds\{job="data",kind="backup"\} \d+(\.\d+)?$/m);
      expect(text).toMatch(/^lifeboat_job_runs_total\{job="data",kind="backup"\} \d+$/m);
      expect(text).toMatch(/^lifeboat_job_failures_total\{job="data",kind="backup"\} 0$/m);
      expect(text).toMatch(/^lifeboat_job_last_bytes_added\{job="data",kind="backup"\} \d+$/m);

      // healthchecks: start and success pings
      await waitFor('healthcheck pings', () => (hc.hits.some((h) => h.path === '/ping/data-uuid/start') && hc.hits.some((h) => h.path === '/ping/data-uuid') ? true : undefined));

      // human status names the job
      const human = await cli(config, ['status', '--no-probe']);
      expect(human.stdout).toMatch(/agent: running/);
      expect(human.stdout).toMatch(/^data( \[running\])?: last success/m);
      expect(human.stdout + agent.log()).not.toContain('secret');

      const stopped = await stopAgent(agent);
      expect(stopped.code).toBe(0);
      expect(stopped.ms).toBeLessThan(30_000);
      // with the agent down, status reads the state database
      const off = await status(config, []);
      expect(off.agent.running).toBe(false);
      expect(job(off, 'data').runs_total).toBeGreaterThanOrEqual(2);
      expect(off.repository?.reachable).toBe(true);
      const locks = await cli(config, ['list', 'locks']);
      expect(locks.stdout.trim()).toBe('');
    } finally {
      await hc.close();
    }
  }, 300_000);

  it('never overlaps runs of one job: a run due while the last still runs is skipped and counted', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'data', 'a.txt'), 'x');
    const marks = path.join(dir, 'marks');
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}
agent: {state_dir: state}
metrics: {enabled: false}
backups:
  slow:
    paths: [${path.join(dir, 'data')}]
    schedule: "* * * * * *"
    before: "echo start >> ${marks}; sleep 3"
    after: "echo end >> ${marks}"
`);
    const agent = launch(config);
    const s = await waitFor('two runs and a skipped one', async () => {
      const st = await status(config).catch(() => undefined);
      return st && job(st, 'slow').runs_total >= 2 && job(st, 'slow').skipped_total >= 2 ? st : undefined;
    }, 120_000, agent);
    expect(job(s, 'slow').failures_total).toBe(0);
    await stopAgent(agent);
    const lines = fs.readFileSync(marks, 'utf8').trim().split('\n');
    // strictly alternating: no run started before the previous one ended
    for (let i = 0; i < lines.length; i++) expect(lines[i]).toBe(i % 2 === 0 ? 'start' : 'end');
    expect(agent.log()).toMatch(/job slow: schedule run skipped: the previous run \(since .*\) still runs/);
  }, 300_000);

  it('retries a failing job with backoff, then gives up; status, metrics and the fail ping report it', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    const hc = await recorder();
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}
agent:
  state_dir: state
  retries: {attempts: 2, initial_delay: 1s, max_delay: 5s}
metrics: {listen: "127.0.0.1:0"}
healthchecks:
  default: ${hc.url}/hc
backups:
  broken:
    paths: [${path.join(dir, 'missing')}]
    on_failure: "echo failed-hook >> ${path.join(dir, 'hook')}"
`);
    const agent = launch(config);
    try {
      await waitFor('the agent', () => status(config).then((s) => (s.agent.running ? s : undefined)).catch(() => undefined), 60_000, agent);
      const run = await cli(config, ['run', 'broken']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('agent: broken queued');
      await waitFor('three failed attempts', () => (agent.log().includes('job broken: giving up after 3 attempts') ? true : undefined), 120_000, agent);
      const s = await status(config);
      const j = job(s, 'broken');
      expect(j.failures_total).toBe(3);
      expect(j.consecutive_failures).toBe(3);
      expect(j.last_run?.result).toBe('failure');
      expect(j.last_run?.attempt).toBe(3);
      expect(j.last_run?.trigger).toBe('retry');
      expect(j.last_run?.error).toContain('none of the given paths could be read');
      expect(agent.log()).toMatch(/job broken: retrying in 1 s \(attempt 2 of 3\)/);
      expect(agent.log()).toMatch(/job broken: retrying in 2 s \(attempt 3 of 3\)/);
      const text = await (await fetch(`http://${s.agent.metrics}/metrics`)).text();
      expect(text).toMatch(/^lifeboat_job_failures_total\{job="broken",kind="backup"\} 3$/m);
      expect(text).toMatch(/^lifeboat_job_last_success\{job="broken",kind="backup"\} 0$/m);
      const fail = await waitFor('the fail ping', () => hc.hits.find((h) => h.path === '/hc/fail'));
      expect(fail.body).toContain('none of the given paths could be read');
      expect(fs.readFileSync(path.join(dir, 'hook'), 'utf8').trim().split('\n')).toHaveLength(3);
      expect((await stopAgent(agent)).code).toBe(0);
    } finally {
      await hc.close();
    }
  }, 300_000);

  it('runs once at start what was missed while it was down (and a run the last stop interrupted)', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'data', 'a.txt'), 'x');
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}
agent: {state_dir: state}
metrics: {enabled: false}
backups:
  nightly:
    paths: [${path.join(dir, 'data')}]
    schedule: "0 3 * * *"
  fresh:
    paths: [${path.join(dir, 'data')}]
    schedule: "0 3 * * *"
`);
    // the agent last saw `nightly` two days ago (its 03:00 runs since then were missed); `fresh` is new
    const db = StateDb.open(path.join(dir, 'state'));
    const twoDaysAgo = Date.now() - 2 * 86_400_000;
    db.touchJob('nightly', twoDaysAgo);
    db.setLastScheduled('nightly', twoDaysAgo);
    db.close();
    const agent = launch(config);
    const s = await waitFor('the catch-up run', async () => {
      const st = await status(config).catch(() => undefined);
      return st && job(st, 'nightly').runs_total >= 1 ? st : undefined;
    }, 90_000, agent);
    expect(job(s, 'nightly').last_run?.trigger).toBe('catch-up');
    expect(job(s, 'nightly').last_run?.result).toBe('success');
    expect(agent.log()).toMatch(/job nightly: catch-up \(missed its run at .*\): queued/);
    // exactly once, and nothing for a job that never had a chance to run
    await new Promise((r) => setTimeout(r, 2000));
    const again = await status(config);
    expect(job(again, 'nightly').runs_total).toBe(1);
    expect(job(again, 'fresh').runs_total).toBe(0);
    expect((await stopAgent(agent)).code).toBe(0);
  }, 300_000);

  it('SIGTERM during a backup: exits within 30 s, releases the lock, the repository checks clean; the cut run is redone at the next start', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    const data = path.join(dir, 'data');
    fs.mkdirSync(data);
    // incompressible data, enough for several packs on a slow machine
    for (let i = 0; i < 16; i++) fs.writeFileSync(path.join(data, `f${i}`), crypto.randomBytes(32 << 20));
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}
agent: {state_dir: state, nice: 0}
metrics: {enabled: false}
backups:
  big:
    paths: [${data}]
`);
    const agent = launch(config);
    await waitFor('the agent', () => status(config).then((s) => (s.agent.running ? s : undefined)).catch(() => undefined), 60_000, agent);
    expect((await cli(config, ['run', 'big'])).code).toBe(0);
    // mid-backup: running, and at least one pack uploaded
    await waitFor('a pack uploaded by the running backup', async () => {
      return localPacks(path.join(dir, 'repo')).length >= 1 ? true : undefined;
    }, 120_000, agent);
    const stopped = await stopAgent(agent);
    expect(agent.log()).toMatch(/job big: interrupted after/);
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(30_000);
    expect(agent.log()).toMatch(/SIGTERM: stopping/);
    expect((await cli(config, ['list', 'locks'])).stdout.trim()).toBe('');
    const check = await cli(config, ['check']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const off = await status(config);
    expect(job(off, 'big').last_run?.result).toBe('interrupted');
    expect(job(off, 'big').failures_total).toBe(0);
    // the next start redoes the interrupted run (reusing what was uploaded)
    const again = launch(config);
    await waitFor('the redone backup', async () => {
      const s = await status(config).catch(() => undefined);
      return s && job(s, 'big').last_run?.result === 'success' ? s : undefined;
    }, 180_000, again);
    // the index checkpoint written at SIGTERM let the redone run reuse what had been uploaded
    const redone = job(await status(config), 'big');
    expect(redone.last_run!.trigger).toBe('catch-up');
    expect(redone.last_run!.bytes_added).toBeLessThan(16 * (32 << 20));
    expect((await stopAgent(again)).code).toBe(0);
    expect((await cli(config, ['check'])).code).toBe(0);
  }, 300_000);

  it('overlap: queue runs one more right after the running one, never two at once', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'data', 'a.txt'), 'x');
    const marks = path.join(dir, 'marks');
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}
agent: {state_dir: state, overlap: queue}
metrics: {enabled: false}
backups:
  slow:
    paths: [${path.join(dir, 'data')}]
    schedule: "*/2 * * * * *"
    before: "echo start >> ${marks}; sleep 3"
    after: "echo end >> ${marks}"
`);
    const agent = launch(config);
    await waitFor('three runs', async () => {
      const st = await status(config).catch(() => undefined);
      return st && job(st, 'slow').runs_total >= 3 ? st : undefined;
    }, 120_000, agent);
    await stopAgent(agent);
    const lines = fs.readFileSync(marks, 'utf8').trim().split('\n');
    for (let i = 0; i < lines.length; i++) expect(lines[i]).toBe(i % 2 === 0 ? 'start' : 'end');
    expect(agent.log()).toMatch(/job slow: schedule run queued: the previous run \(since .*\) still runs/);
  }, 300_000);

  it('dumps a database entry on its schedule (job db:NAME)', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    const Database = (await import('better-sqlite3')).default;
    const dbFile = path.join(dir, 'notes.db');
    const sq = new Database(dbFile);
    sq.exec("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('hello agent');");
    sq.close();
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}
agent: {state_dir: state}
metrics: {enabled: false}
databases:
  notes:
    type: sqlite
    path: ${dbFile}
    schedule: "*/2 * * * * *"
`);
    const agent = launch(config);
    const s = await waitFor('a dump', async () => {
      const st = await status(config).catch(() => undefined);
      return st && job(st, 'db:notes').last_run?.result === 'success' ? st : undefined;
    }, 90_000, agent);
    expect(job(s, 'db:notes').kind).toBe('db');
    expect(job(s, 'db:notes').last_run!.snapshots).toHaveLength(1);
    expect(job(s, 'db:notes').last_run!.bytes_added).toBeGreaterThan(0);
    expect((await stopAgent(agent)).code).toBe(0);
    expect((await snapshotsTagged(config, 'db:notes')).length).toBeGreaterThanOrEqual(1);
  }, 300_000);

  it('SIGHUP reloads the config; an invalid one is rejected and the old one kept', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'data', 'a.txt'), 'x');
    const config = path.join(dir, 'lifeboat.yaml');
    const good = `${head}
agent: {state_dir: state}
metrics: {enabled: false}
backups:
  one:
    paths: [${path.join(dir, 'data')}]
    schedule: "*/2 * * * * *"
`;
    fs.writeFileSync(config, good);
    const agent = launch(config);
    await waitFor('a first run', async () => {
      const s = await status(config).catch(() => undefined);
      return s && job(s, 'one').runs_total >= 1 ? s : undefined;
    }, 90_000, agent);
    // an invalid config: rejected with file:line: field, the old jobs go on (their children get the old text too)
    fs.writeFileSync(config, `${good}  two:\n    paths: [relative/path]\n`);
    agent.child.kill('SIGHUP');
    await waitFor('the rejection', () => (agent.log().includes('reload: the new config is invalid, keeping the old one') ? true : undefined), 30_000, agent);
    expect(agent.log()).toMatch(/lifeboat\.yaml:\d+: backups\.two\.paths\.0: must be an absolute path/);
    const counters = () => {
      const db = StateDb.open(path.join(dir, 'state'), { readonly: true });
      try {
        return db.counters('one')!;
      } finally {
        db.close();
      }
    };
    const before = counters().runsTotal;
    await waitFor('runs after the bad reload', () => {
      const c = counters();
      return c.runsTotal >= before + 2 && c.consecutiveFailures === 0 ? true : undefined;
    }, 90_000, agent);
    // a valid new config: the new job appears
    fs.writeFileSync(config, `${good}  two:\n    paths: [${path.join(dir, 'data')}]\n`);
    agent.child.kill('SIGHUP');
    const s = await waitFor('the new job', async () => {
      const st = await status(config).catch(() => undefined);
      return st && st.jobs.some((j) => j.name === 'two') ? st : undefined;
    }, 30_000, agent);
    expect(job(s, 'two').next_run).toBeNull();
    expect(agent.log()).toMatch(/reload: config .* loaded \(2 jobs: one, two\)/);
    expect((await stopAgent(agent)).code).toBe(0);
  }, 300_000);

  it('restore test: restores a sample of the latest snapshots and verifies it; a corrupted pack fails it', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    const data = path.join(dir, 'data');
    fs.mkdirSync(path.join(data, 'sub'), { recursive: true });
    for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(data, i % 2 ? 'sub' : '', `f${i}.txt`), `file ${i}\n`.repeat(100 + i));
    fs.writeFileSync(path.join(data, 'big.bin'), Buffer.alloc(3 << 20, 7));
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}
agent: {state_dir: state}
metrics: {listen: "127.0.0.1:0"}
backups:
  data:
    paths: [${data}]
restore_test:
  files: 5
`);
    expect((await cli(config, ['run', 'data'])).code).toBe(0);
    const rt = await cli(config, ['run', 'restore_test', '--json']);
    expect(rt.code, rt.stderr).toBe(0);
    const out = JSON.parse(rt.stdout) as { result: string; details: { files_verified: number; ok: boolean; repository: { snapshots: number } } };
    expect(out.result).toBe('success');
    expect(out.details.ok).toBe(true);
    expect(out.details.files_verified).toBe(5);
    expect(out.details.repository.snapshots).toBe(1);

    // through the agent: reported in status and metrics
    const agent = launch(config);
    await waitFor('the agent', () => status(config).then((s) => (s.agent.running ? s : undefined)).catch(() => undefined), 60_000, agent);
    const waited = await cli(config, ['run', 'restore_test', '--wait']);
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stdout).toContain('restore_test: success');
    const s = await waitFor('the restore test', async () => {
      const st = await status(config).catch(() => undefined);
      return st && job(st, 'restore_test').last_run?.result === 'success' ? st : undefined;
    }, 90_000, agent);
    expect(job(s, 'restore_test').last_run?.details.files_verified).toBe(5);
    const text = await (await fetch(`http://${s.agent.metrics}/metrics`)).text();
    expect(text).toMatch(/^lifeboat_restore_test_last_success_timestamp_seconds \d+/m);
    expect(text).toMatch(/^lifeboat_repository_snapshots 1$/m);
    expect((await stopAgent(agent)).code).toBe(0);

    // flip a byte inside every data pack's blobs: the restore test must notice
    for (const p of localPacks(path.join(dir, 'repo'))) {
      const b = fs.readFileSync(p);
      b[30] ^= 0xff; // inside the first blob's sealed bytes
      fs.writeFileSync(p, b);
    }
    const bad = await cli(config, ['restore-test', '--files', '50', '--json']);
    expect(bad.code).toBe(1);
    const r = JSON.parse(bad.stdout) as { ok: boolean; failures: Array<{ path: string; error: string }> };
    expect(r.ok).toBe(false);
    expect(r.failures.length).toBeGreaterThan(0);
    expect(bad.stderr).toContain('restore test FAILED');
  }, 300_000);

  it('the watcher journal records changes and backs them up a quiet interval later; a full scan at start catches changes made while it was down', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    const data = path.join(dir, 'data');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'a.txt'), 'a');
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}
agent: {state_dir: state}
metrics: {enabled: false}
watch:
  enabled: true
  continuous: 2s
  debounce: 1s
backups:
  docs:
    paths: [${data}]
    schedule: "0 3 * * *"
`);
    const agent = launch(config);
    // the full scan at start
    await waitFor('the full scan at start', async () => {
      const s = await status(config).catch(() => undefined);
      return s && job(s, 'docs').last_run?.trigger === 'full-scan' && job(s, 'docs').last_run?.result === 'success' ? s : undefined;
    }, 90_000, agent);
    const runsBefore = job(await status(config), 'docs').runs_total;
    fs.writeFileSync(path.join(data, 'new.txt'), 'watched change\n');
    const s = await waitFor('the watch-triggered backup', async () => {
      const st = await status(config).catch(() => undefined);
      const j = st && job(st, 'docs');
      return j && j.runs_total > runsBefore && j.last_run?.trigger === 'watch' && j.last_run.result === 'success' ? st : undefined;
    }, 90_000, agent);
    expect(job(s, 'docs').pending_changes).toBe(0);
    const dumped = await cli(config, ['dump', 'latest', path.join(data, 'new.txt')]);
    expect(dumped.stdout).toBe('watched change\n');
    expect((await stopAgent(agent)).code).toBe(0);

    // changed while nobody watched: the full scan at the next start has it
    fs.writeFileSync(path.join(data, 'offline.txt'), 'changed while down\n');
    const again = launch(config);
    await waitFor('the full scan after restart', async () => {
      const r = await cli(config, ['dump', 'latest', path.join(data, 'offline.txt')]);
      return r.code === 0 && r.stdout === 'changed while down\n' ? true : undefined;
    }, 90_000, again);
    expect((await stopAgent(again)).code).toBe(0);
  }, 300_000);

  it('a journal-driven backup reads only the directories the watcher saw change', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    const data = path.join(dir, 'tree');
    for (let d = 0; d < 40; d++) {
      fs.mkdirSync(path.join(data, `d${d}`, 'deep'), { recursive: true });
      for (let f = 0; f < 50; f++) fs.writeFileSync(path.join(data, `d${d}`, 'deep', `f${f}.txt`), `${d}/${f}\n`);
    }
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}
agent: {state_dir: state}
metrics: {enabled: false}
watch:
  enabled: true
  continuous: 2s
  debounce: 500ms
backups:
  tree:
    paths: [${data}]
`);
    const agent = launch(config);
    await waitFor('the full scan once the watcher is ready', async () => {
      const s = await status(config).catch(() => undefined);
      const j = s && job(s, 'tree');
      return j?.last_run?.result === 'success' && j.last_run.details.scan === 'full' ? j : undefined;
    }, 120_000, agent);
    for (const d of [3, 17, 29]) fs.writeFileSync(path.join(data, `d${d}`, 'deep', 'f7.txt'), `changed ${d}\n`);
    const j = await waitFor('the journal-driven backup', async () => {
      const s = await status(config).catch(() => undefined);
      const jj = s && job(s, 'tree');
      return jj?.last_run?.result === 'success' && jj.last_run.trigger === 'watch' ? jj : undefined;
    }, 120_000, agent);
    expect(j.last_run!.details.scan).toBe('journal');
    expect(j.last_run!.details.journal_paths).toBeGreaterThanOrEqual(3);
    // three directories of 50 files read again, not 2,000 files
    expect(j.last_run!.details.files_processed).toBe(150);
    expect(j.last_run!.details.files_read).toBe(3);
    expect(agent.log()).toMatch(/job tree: started \(watch, journal: \d+ changed paths\)/);
    expect((await stopAgent(agent)).code).toBe(0);
    // the snapshot is complete: every file, the changed ones with their new content
    const ls = await cli(config, ['ls', 'latest', data, '--recursive', '--json']);
    expect(ls.stdout.split('\n').filter((l) => l.includes('"type":"file"')).length).toBe(2000);
    expect((await cli(config, ['dump', 'latest', path.join(data, 'd17', 'deep', 'f7.txt')])).stdout).toBe('changed 17\n');
    expect((await cli(config, ['dump', 'latest', path.join(data, 'd18', 'deep', 'f7.txt')])).stdout).toBe('18/7\n');
  }, 300_000);

  it('doctor: one line per check with its fix; a world-readable password fails it', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}
agent: {state_dir: state}
backups:
  x: {paths: [${dir}], watch: true, schedule: "@daily"}
databases:
  pg: {type: postgres, host: 127.0.0.1}
`);
    const ok = await cli(config, ['doctor', '--json']);
    const findings = JSON.parse(ok.stdout) as Array<{ check: string; verdict: string; message: string; fix?: string }>;
    const by = (c: string) => findings.find((f) => f.check === c);
    expect(by('config')?.verdict).toBe('ok');
    expect(by('password file')?.verdict).toBe('ok');
    expect(by('repository')).toMatchObject({ verdict: 'ok', message: expect.stringContaining('opens with the password') });
    expect(by('inotify')?.verdict).toBe('ok');
    // this machine has the helper, libzstd and libsodium: every fast path is in use
    expect(by('native code')).toMatchObject({ verdict: 'ok', message: expect.stringContaining('run natively') });
    expect(by('restore test')?.verdict).toBe('warn');
    expect(by('agent')?.verdict).toBe('warn');
    expect(by('databases.pg')?.verdict).toMatch(/ok|fail/);
    fs.chmodSync(path.join(dir, 'pw'), 0o644);
    fs.writeFileSync(path.join(dir, 'wrong'), 'nope\n', { mode: 0o600 });
    const bad = await cli(config, ['doctor']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^FAIL  password file: .*pw is world-readable \(mode 0644\) — fix: chmod 600 /m);
    const wrong = await cli(config, ['--password-file', path.join(dir, 'wrong'), 'doctor']);
    expect(wrong.stdout).toMatch(/^FAIL  repository: .* — fix: check the password file/m);
  }, 300_000);

  it('rejects bad agent config with file:line: field', async () => {
    const dir = await makeTempDir();
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `repository: ${dir}/repo
backups:
  x:
    paths: [/srv]
    schedule: "61 * * * *"
retention:
  schedule: "@daily"
agent:
  overlap: sometimes
`);
    const r = await cli(config, ['agent']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/lifeboat\.yaml:5: backups\.x\.schedule: invalid cron expression "61 \* \* \* \*"/);
    expect(r.stderr).toMatch(/lifeboat\.yaml:\d+: retention: no keep rule/);
    expect(r.stderr).toMatch(/lifeboat\.yaml:9: agent\.overlap: expected "skip" or "queue"/);
  }, 300_000);
});

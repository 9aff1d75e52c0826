import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { agentRequest } from '../../agent/control-client.js';
import { socketPath, stateDir } from '../../agent/paths.js';
import { StateDb } from '../../agent/state-db.js';
import { jobTable } from '../../agent/jobs.js';
import { formatStatus, jobStatuses, repositoryStats, safeLocation, type StatusReport } from '../../agent/status.js';
import { probeRepository } from '../../agent/probe.js';
import { UsageError } from '../exit-codes.js';
import { runJob } from '../../agent/runner.js';

/** `lifeboat status`: from the running agent over its socket, else from the state database. */
export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('each job\'s last run, next run and failures, and whether the repository answers (from the agent, or its state database when it is down)')
    .option('--no-probe', 'do not contact the repository')
    .action(async (opts: { probe: boolean }, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const config = ctx.config?.config ?? null;
      const sock = socketPath(config);
      const live = await agentRequest(sock, 'GET', `/status${opts.probe ? '' : '?probe=0'}`);
      let report: StatusReport;
      if (live && live.status === 200) {
        report = JSON.parse(live.body) as StatusReport;
      } else {
        if (!ctx.config) throw new UsageError('no config file and no running agent: use --config');
        const dir = stateDir(config);
        let db: StateDb | null = null;
        try {
          db = StateDb.open(dir, { readonly: true });
        } catch {
          db = null; // the agent never ran here
        }
        try {
          report = { agent: { running: false, state_dir: dir, socket: sock, config: ctx.config.file }, jobs: jobStatuses(jobTable(ctx.config.config), db) };
          const loc = ctx.globals.repo ?? process.env.LIFEBOAT_REPOSITORY ?? config?.repository;
          if (loc) {
            const p = opts.probe ? await probeRepository(loc) : { reachable: true };
            report.repository = { location: safeLocation(loc), ...p, ...repositoryStats(db) };
          }
        } finally {
          db?.close();
        }
      }
      if (ctx.out.json) ctx.out.printJson(report);
      else ctx.out.result(formatStatus(report));
    });

  program
    .command('run')
    .description('run a job of the config now: through the agent when it runs (queued, no overlap), else here in the foreground')
    .argument('<job>', 'a backup\'s name, db:NAME, retention, check, restore_test, instance_snapshot:TYPE')
    .option('--here', 'run in this process even when the agent runs (may then overlap with it; the repository lock still protects the data)')
    .option('--wait', 'through the agent: wait until the run finished and exit 1 when it failed')
    .action(async (name: string, opts: { here?: boolean; wait?: boolean }, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      if (!ctx.config) throw new UsageError('no config file: use --config');
      const spec = jobTable(ctx.config.config).find((j) => j.name === name);
      if (!spec) throw new UsageError(`no job named ${name} in ${ctx.config.file} (jobs: ${jobTable(ctx.config.config).map((j) => j.name).join(', ') || 'none'})`);
      if (!opts.here) {
        const sock = socketPath(ctx.config.config);
        const asked = Date.now() - 1000;
        const r = await agentRequest(sock, 'POST', `/run/${encodeURIComponent(name)}`);
        if (r) {
          const body = JSON.parse(r.body) as { ok: boolean; message: string };
          if (!opts.wait || !body.ok) {
            if (ctx.out.json) ctx.out.printJson({ via: 'agent', ...body });
            else ctx.out.result(`agent: ${body.message}`);
            if (!body.ok) throw new UsageError(body.message);
            return;
          }
          if (!ctx.out.json) ctx.out.info(`agent: ${body.message}; waiting for it to finish`);
          for (;;) {
            await new Promise((res) => setTimeout(res, 1000));
            const st = await agentRequest(sock, 'GET', '/status?probe=0');
            if (!st) throw new UsageError('the agent stopped answering');
            const j = (JSON.parse(st.body) as StatusReport).jobs.find((x) => x.name === name);
            const last = j?.last_run;
            if (!j || !last || Date.parse(last.started) < asked || j.state === 'running' || j.state === 'queued') continue;
            if (ctx.out.json) ctx.out.printJson({ via: 'agent', job: name, ...last, state: j.state });
            else ctx.out.result(`${name}: ${last.result}${last.error ? `: ${last.error}` : ''}${j.state === 'retrying' ? ` (a retry is scheduled for ${j.next_run})` : ''}`);
            if (last.result === 'failure' || last.result === 'interrupted') throw new UsageError(`${name} failed`);
            return;
          }
        }
      }
      const g = ctx.globals;
      const outcome = await runJob(spec, {
        globals: { configFile: ctx.config.file, ...(g.repo ? { repo: g.repo } : {}), ...(g.passwordFile ? { passwordFile: g.passwordFile } : {}), ...(g.cacheDir ? { cacheDir: g.cacheDir } : {}) },
        log: (l) => process.stderr.write(`${l}\n`),
        timeoutMs: ctx.config.config.agent.job_timeout,
      });
      if (ctx.out.json) ctx.out.printJson({ via: 'here', job: name, result: outcome.result, bytes_added: outcome.bytesAdded, snapshots: outcome.snapshots, error: outcome.error, details: outcome.details });
      else ctx.out.result(`${name}: ${outcome.result}${outcome.error ? `: ${outcome.error}` : ''}`);
      if (outcome.result === 'failure' || outcome.result === 'interrupted') throw new UsageError(`${name} failed`);
    });
}

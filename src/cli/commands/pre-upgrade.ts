import type { Command } from 'commander';
import os from 'node:os';
import path from 'node:path';
import { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { openProvider, snapshotDefaults } from '../../cloud/open.js';
import { describePreUpgrade, runPreUpgrade, type PreUpgradeMode, type PreUpgradeResult } from '../../jobs/pre-upgrade.js';
import { createResultJson, parseTimeout } from './instance-snapshot.js';

export interface PreUpgradeCliOptions {
  reason?: string;
  mode?: string;
  wait?: boolean;
  timeout?: string;
}

export function stateDir(): string {
  if (process.env.LIFEBOAT_STATE_DIR) return process.env.LIFEBOAT_STATE_DIR;
  return process.getuid?.() === 0 ? '/var/lib/lifeboat' : path.join(os.homedir(), '.local', 'state', 'lifeboat');
}

export function parseMode(m: string | undefined): PreUpgradeMode | undefined {
  if (m === undefined) return undefined;
  if (m !== 'snapshot' && m !== 'files' && m !== 'both') throw new UsageError('--mode must be snapshot, files or both');
  return m;
}

/** Runs the pre-upgrade rollback point with flags > config (instance_snapshots.pre_upgrade) > defaults. */
export async function preUpgradeFromCli(
  ctx: CliContext,
  o: PreUpgradeCliOptions,
  extra: { labels?: Record<string, string>; transaction?: string[]; progress?: (line: string) => void } = {},
): Promise<PreUpgradeResult> {
  const pre = ctx.config?.config.instance_snapshots?.pre_upgrade;
  const flagMode = parseMode(o.mode);
  const mode = flagMode ?? pre?.mode ?? 'both';
  const d = snapshotDefaults(ctx.config?.config, 'pre-upgrade');
  let hasRepo = true;
  try {
    ctx.repositoryLocation();
  } catch {
    hasRepo = false;
  }
  return runPreUpgrade({
    mode,
    modeExplicit: flagMode !== undefined || pre?.mode !== undefined,
    reason: o.reason ?? 'pre-upgrade',
    ...(extra.labels ? { labels: extra.labels } : {}),
    ...(extra.transaction ? { transaction: extra.transaction } : {}),
    rotation: d.rotation,
    wait: o.wait ?? d.wait,
    timeoutMs: parseTimeout(o.timeout) ?? d.timeoutMs,
    ...(pre?.paths ? { paths: pre.paths } : {}),
    stateDir: stateDir(),
    openProvider: () => openProvider(ctx.config, (l) => ctx.out.debug(l)),
    withRepository: hasRepo ? (fn) => ctx.withRepository(fn, { lock: 'shared' }) : null,
    onProgress: extra.progress ?? ((l) => ctx.out.debug(l)),
    onFileError: (p, reason) => process.stderr.write(`error: ${p}: ${reason}\n`),
  });
}

export function preUpgradeJson(r: PreUpgradeResult): Record<string, unknown> {
  return {
    ok: r.ok,
    instance_snapshot: r.snapshot ? createResultJson(r.snapshot) : null,
    instance_snapshot_error: r.snapshotError,
    files: r.files ? { snapshot_id: r.files.snapshotId, incomplete: r.files.incomplete, paths: r.files.paths } : null,
    files_error: r.filesError,
    skipped: r.skipped,
  };
}

/** The error line for a failed pre-upgrade (both parts' reasons). */
export function preUpgradeFailure(r: PreUpgradeResult): string {
  return [r.snapshotError && `instance snapshot failed: ${r.snapshotError}`, r.filesError && `file backup failed: ${r.filesError}`].filter(Boolean).join('; ');
}

export function registerPreUpgrade(program: Command): void {
  program
    .command('pre-upgrade')
    .description('take a rollback point before a package upgrade: an instance snapshot (type pre-upgrade) and/or a file backup of /etc, the package database and a software manifest (tag pre-upgrade)')
    .option('--reason <text>', 'why (stored with the snapshot)', 'pre-upgrade')
    .option('--mode <mode>', 'snapshot, files or both (default: the config\'s instance_snapshots.pre_upgrade.mode, else both)')
    .option('--wait', 'wait until the instance snapshot is complete')
    .option('--no-wait', 'return once the cloud accepted the snapshot')
    .option('--timeout <duration>', 'how long the snapshot may take (default 30m)')
    .action(async (o: PreUpgradeCliOptions, c: Command) => {
      const ctx = CliContext.from(c);
      const r = await preUpgradeFromCli(ctx, o);
      if (ctx.out.json) ctx.out.printJson(preUpgradeJson(r));
      else for (const l of describePreUpgrade(r)) ctx.out.result(l);
      if (!r.ok) throw new UsageError(preUpgradeFailure(r));
    });
}

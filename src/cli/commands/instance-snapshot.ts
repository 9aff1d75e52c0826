import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { table } from '../output.js';
import { openProvider, snapshotDefaults } from '../../cloud/open.js';
import type { CreateSnapshotResult, InstanceSnapshot } from '../../cloud/provider.js';
import { parseDuration } from '../../util/duration.js';

interface CreateOpts {
  type: string;
  rotation?: string;
  name?: string;
  reason?: string;
  wait?: boolean;
  timeout?: string;
}

export const TYPE_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

export function parseRotation(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new UsageError('--rotation must be a non-negative integer');
  return n;
}

export function parseTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseDuration(text);
  } catch (e) {
    throw new UsageError(`--timeout: ${(e as Error).message}`);
  }
}

export function snapshotJson(s: InstanceSnapshot): Record<string, unknown> {
  return {
    id: s.id,
    name: s.name,
    status: s.status,
    type: s.type,
    reason: s.reason,
    created_at: s.createdAt,
    protected: s.protected,
    kind: s.kind,
    volume_snapshots: s.volumeSnapshots,
    size: s.size,
    metadata: s.metadata,
  };
}

export function createResultJson(r: CreateSnapshotResult): Record<string, unknown> {
  return {
    server_id: r.serverId,
    complete: r.complete,
    snapshot: snapshotJson(r.snapshot),
    rotated: r.rotated,
    kept: r.keptBusy,
    warnings: r.warnings,
  };
}

export function registerInstanceSnapshot(program: Command): void {
  const cmd = program.command('instance-snapshot').description('whole-instance snapshots of this VM through the cloud API (OpenStack Nova/Glance/Cinder)');

  cmd
    .command('create')
    .description('snapshot this VM: createBackup with rotation (image-backed) or createImage with lifeboat\'s rotation (boot-from-volume)')
    .option('--type <type>', 'rotation group ("backup type"), e.g. daily, weekly, manual', 'manual')
    .option('--rotation <n>', 'keep this many snapshots of the type (default: the config\'s rotation for the type, else 7)')
    .option('--name <name>', 'snapshot name (default <server>-<type>-<UTC time>)')
    .option('--reason <text>', 'why (stored in the snapshot\'s lifeboat:reason)')
    .option('--wait', 'wait until the snapshot is complete (image active and server idle, or volume snapshots available)')
    .option('--no-wait', 'return once the cloud accepted the snapshot')
    .option('--timeout <duration>', 'how long to wait for a busy server and with --wait (default 30m)')
    .action(async (o: CreateOpts, c: Command) => {
      const ctx = CliContext.from(c);
      if (!TYPE_RE.test(o.type)) throw new UsageError('--type: 1-64 characters of letters, digits and _ . : -');
      const d = snapshotDefaults(ctx.config?.config, o.type);
      const rotation = parseRotation(o.rotation) ?? d.rotation;
      const timeoutMs = parseTimeout(o.timeout) ?? d.timeoutMs;
      const provider = openProvider(ctx.config, (l) => ctx.out.debug(l));
      const r = await provider.create({
        type: o.type,
        rotation,
        ...(o.name ? { name: o.name } : {}),
        labels: { reason: o.reason ?? 'manual' },
        wait: o.wait ?? d.wait,
        timeoutMs,
        onProgress: (l) => ctx.out.info(l),
      });
      for (const w of r.warnings) ctx.out.warn(w);
      if (ctx.out.json) return ctx.out.printJson(createResultJson(r));
      const s = r.snapshot;
      ctx.out.result(`instance snapshot ${s.id} "${s.name}" (${s.kind}-backed, type ${o.type}, rotation ${rotation}): ${r.complete ? 'complete' : s.status}`);
      for (const id of r.rotated) ctx.out.info(`rotation deleted ${id}`);
      for (const id of r.keptBusy) ctx.out.info(`rotation kept ${id} (protected or busy)`);
    });

  cmd
    .command('list')
    .description('this VM\'s instance snapshots, newest first')
    .option('--type <type>', 'only this type')
    .action(async (o: { type?: string }, c: Command) => {
      const ctx = CliContext.from(c);
      const provider = openProvider(ctx.config, (l) => ctx.out.debug(l));
      const list = await provider.list(o.type ? { type: o.type } : {});
      if (ctx.out.json) return ctx.out.printJson(list.map(snapshotJson));
      ctx.out.result(
        table(
          ['ID', 'Created', 'Type', 'Status', 'Kind', 'Protected', 'Name'],
          list.map((s) => [s.id, s.createdAt.replace(/\.\d{3}Z$/, 'Z'), s.type ?? '', s.status, s.kind, s.protected ? 'yes' : '', s.name]),
        ),
      );
      ctx.out.info(`${list.length} snapshot${list.length === 1 ? '' : 's'}`);
    });

  cmd
    .command('delete')
    .description('delete a snapshot of this VM (volume-backed: its volume snapshots first, then the image)')
    .argument('<id>', 'image id')
    .option('--timeout <duration>', 'how long to wait for volume snapshots to be deleted (default 10m)')
    .action(async (id: string, o: { timeout?: string }, c: Command) => {
      const ctx = CliContext.from(c);
      const provider = openProvider(ctx.config, (l) => ctx.out.debug(l));
      const t = parseTimeout(o.timeout);
      const r = await provider.delete(id, t !== undefined ? { timeoutMs: t } : {});
      if (ctx.out.json) return ctx.out.printJson({ id: r.id, deleted: r.deleted, volume_snapshots_deleted: r.volumeSnapshotsDeleted });
      ctx.out.result(`deleted ${r.id}${r.volumeSnapshotsDeleted.length ? ` and volume snapshots ${r.volumeSnapshotsDeleted.join(', ')}` : ''}`);
    });

  for (const [verb, value] of [['protect', true], ['unprotect', false]] as const) {
    cmd
      .command(verb)
      .description(value ? 'pin a snapshot: rotation (Nova\'s and lifeboat\'s) skips protected images' : 'let rotation delete this snapshot again')
      .argument('<id>', 'image id')
      .action(async (id: string, _o: unknown, c: Command) => {
        const ctx = CliContext.from(c);
        const provider = openProvider(ctx.config, (l) => ctx.out.debug(l));
        const s = await provider.setProtected(id, value);
        if (ctx.out.json) return ctx.out.printJson(snapshotJson(s));
        ctx.out.result(`${s.id} ${s.protected ? 'protected' : 'unprotected'}`);
      });
  }

  cmd
    .command('restore-help')
    .description('print the exact commands that restore this VM from a snapshot (lifeboat never rebuilds its own VM)')
    .argument('<id>', 'image id')
    .action(async (id: string, _o: unknown, c: Command) => {
      const ctx = CliContext.from(c);
      const provider = openProvider(ctx.config, (l) => ctx.out.debug(l));
      const lines = await provider.restoreHelp(id);
      if (ctx.out.json) return ctx.out.printJson({ id, commands: lines.filter((l) => !l.startsWith('#')), text: lines });
      for (const l of lines) ctx.out.result(l);
    });
}

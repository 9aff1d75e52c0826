import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { CliContext } from '../context.js';
import { EXIT, UsageError } from '../exit-codes.js';
import { table } from '../output.js';
import { HOOK_KINDS, hookStatus, installHook, uninstallHook, type HookKind, type HookSettings } from '../../hooks/install.js';
import { describeChanges, parseAptHookInfo } from '../../hooks/apt-info.js';
import { findFrontend, RunStamps } from '../../hooks/dedupe.js';
import { clip } from '../../cloud/openstack/labels.js';
import { describePreUpgrade } from '../../jobs/pre-upgrade.js';
import { parseMode, preUpgradeFailure, preUpgradeFromCli, preUpgradeJson, stateDir } from './pre-upgrade.js';

function parseKind(k: string): HookKind {
  if (!(HOOK_KINDS as string[]).includes(k)) throw new UsageError(`unknown package manager "${k}": use apt, dnf or dnf5`);
  return k as HookKind;
}

function parseFail(f: string | undefined): 'open' | 'closed' | undefined {
  if (f === undefined) return undefined;
  if (f !== 'open' && f !== 'closed') throw new UsageError('--fail must be open or closed');
  return f;
}

/**
 * How the hook calls lifeboat: $LIFEBOAT_COMMAND when the launcher set it (the .deb's /usr/bin/lifeboat
 * wrapper), /usr/bin/lifeboat when that is this program, else node + this script.
 */
function defaultCommand(): string {
  const launcher = process.env.LIFEBOAT_COMMAND;
  if (launcher && path.isAbsolute(launcher) && !/\s/.test(launcher)) return launcher;
  const self = fs.realpathSync(process.argv[1]!);
  try {
    if (fs.realpathSync('/usr/bin/lifeboat') === self) return '/usr/bin/lifeboat';
  } catch {
    // not installed there
  }
  return `${process.execPath} ${self}`;
}

function runDir(): string {
  return process.env.LIFEBOAT_RUN_DIR || (process.getuid?.() === 0 ? '/run/lifeboat' : path.join(stateDir(), 'run'));
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface RunOpts {
  mode?: string;
  fail?: string;
  wait?: boolean;
  timeout?: string;
  reason?: string;
}

export function registerHooks(program: Command): void {
  const cmd = program.command('hooks').description('package-manager hooks that take a rollback point (lifeboat pre-upgrade) before every upgrade');

  cmd
    .command('install')
    .description('install the hook for apt, dnf (4) or dnf5')
    .argument('<manager>', 'apt, dnf or dnf5')
    .option('--mode <mode>', 'snapshot, files or both (default: the config\'s pre_upgrade.mode, else both)')
    .option('--fail <policy>', 'open: log and let the upgrade proceed when the rollback point fails; closed: stop it (default: config, else open)')
    .option('--wait', 'wait until the instance snapshot is complete before the upgrade starts (default)')
    .option('--no-wait', 'let the upgrade start once the cloud accepted the snapshot')
    .option('--command <cmd>', 'how the hook runs lifeboat (default: this program)')
    .action((manager: string, o: RunOpts & { command?: string }, c: Command) => {
      const ctx = CliContext.from(c);
      const kind = parseKind(manager);
      const pre = ctx.config?.config.instance_snapshots?.pre_upgrade;
      const mode = parseMode(o.mode);
      const settings: HookSettings = {
        // mode and wait given here are fixed in the hook; else the config decides at each run
        ...(mode ? { mode } : {}),
        fail: parseFail(o.fail) ?? pre?.fail ?? 'open',
        ...(o.wait !== undefined ? { wait: o.wait } : {}),
        command: o.command ?? defaultCommand(),
        ...(ctx.config ? { configFile: ctx.config.file } : {}),
      };
      let files: string[];
      try {
        files = installHook(kind, settings);
      } catch (e) {
        throw new UsageError(`hooks install ${kind}: ${(e as Error).message}`);
      }
      if (ctx.out.json) return ctx.out.printJson({ kind, files, mode: settings.mode, fail: settings.fail, wait: settings.wait, command: settings.command });
      const how = (v: unknown, name: string) => (v === undefined ? `${name} from the config` : `${name} ${String(v)}`);
      ctx.out.result(`installed the ${kind} hook (${how(settings.mode, 'mode')}, fail ${settings.fail}, ${how(settings.wait, 'wait')}): ${files.join(', ')}`);
      if (kind === 'dnf5') ctx.out.info('the dnf5 hook needs the actions plugin (package libdnf5-plugin-actions)');
      // the hook runs under apt/dnf (or unattended-upgrades): only the config file is sure to be there
      if (!ctx.config) {
        ctx.out.warn('no lifeboat config file: the hook reads /etc/lifeboat/lifeboat.yaml at each run; OS_* and LIFEBOAT_* variables of this shell are not seen by unattended-upgrades');
      } else {
        const c = ctx.config.config;
        const m = mode ?? pre?.mode;
        if (!c.cloud && m !== 'files') ctx.out.warn(`${ctx.config.file} has no cloud: section: the instance snapshot relies on clouds.yaml in /etc/openstack or root's home`);
        if (!c.repository && m !== 'snapshot') ctx.out.warn(`${ctx.config.file} has no repository: the pre-upgrade file backup ${m === 'files' || m === 'both' ? 'will fail' : 'is skipped'}`);
      }
    });

  cmd
    .command('uninstall')
    .description('remove lifeboat\'s hooks (all of them, or one package manager\'s)')
    .argument('[manager]', 'apt, dnf or dnf5')
    .action((manager: string | undefined, _o: unknown, c: Command) => {
      const ctx = CliContext.from(c);
      const kinds = manager ? [parseKind(manager)] : HOOK_KINDS;
      const removed = kinds.flatMap((k) => uninstallHook(k));
      if (ctx.out.json) return ctx.out.printJson({ removed });
      ctx.out.result(removed.length ? `removed ${removed.join(', ')}` : 'no lifeboat hook was installed');
    });

  cmd
    .command('status')
    .description('which hooks are installed, with which settings, and how the last hook run went')
    .action((_o: unknown, c: Command) => {
      const ctx = CliContext.from(c);
      const st = HOOK_KINDS.map((k) => hookStatus(k));
      let last: unknown = null;
      try {
        last = JSON.parse(fs.readFileSync(path.join(stateDir(), 'last-hook.json'), 'utf8'));
      } catch {
        // never ran
      }
      if (ctx.out.json) return ctx.out.printJson({ hooks: st, last_run: last });
      ctx.out.result(
        table(
          ['Manager', 'Installed', 'Mode', 'Fail', 'Wait', 'File'],
          st.map((s) => [s.kind, s.installed ? 'yes' : s.managerPresent ? 'no' : 'no (not here)', s.settings.mode ?? '', s.settings.fail ?? '', s.settings.wait ?? '', s.files[0]!]),
        ),
      );
      if (last) {
        const l = last as { at: string; kind: string; ok: boolean; message: string };
        ctx.out.result(`last hook run: ${l.at} (${l.kind}) ${l.ok ? 'ok' : 'FAILED'}: ${l.message}`);
      }
    });

  cmd
    .command('run', { hidden: true })
    .description('what the installed hook runs (reads apt\'s package list on stdin)')
    .argument('<manager>', 'apt, dnf or dnf5')
    .option('--mode <mode>', 'snapshot, files or both')
    .option('--fail <policy>', 'open or closed', 'open')
    .option('--wait', 'wait for the instance snapshot')
    .option('--no-wait', 'do not wait')
    .option('--timeout <duration>', 'how long the snapshot may take')
    .action(async (manager: string, o: RunOpts, c: Command) => {
      const ctx = CliContext.from(c);
      const kind = parseKind(manager);
      const fail = parseFail(o.fail) ?? 'open';
      // read apt's info fully first (apt ignores SIGPIPE, but must not block on a full pipe meanwhile)
      const input = kind === 'dnf5' ? '' : await readStdin();
      let changes: string[] = [];
      if (kind === 'apt') changes = describeChanges(parseAptHookInfo(input).packages);
      else if (kind === 'dnf') changes = input.split('\n').map((l) => l.trim()).filter(Boolean);
      const log = (l: string) => process.stderr.write(`lifeboat: ${l}\n`);

      const stamps = new RunStamps(runDir());
      const frontend = findFrontend();
      const key = stamps.key(frontend);
      const earlier = stamps.find(key, kind);
      if (earlier) {
        log(`rollback point already ${earlier.ok ? 'taken' : 'attempted'} in this ${kind} run (${earlier.message})`);
        if (!earlier.ok && fail === 'closed') throw new UsageError('the earlier pre-upgrade rollback point of this run failed; stopping (fail closed)');
        return;
      }
      log(`taking a pre-upgrade rollback point (${kind}${changes.length ? `: ${changes.length} package${changes.length === 1 ? '' : 's'}` : ''})`);
      let message: string;
      let ok: boolean;
      let result;
      try {
        result = await preUpgradeFromCli(ctx, { reason: o.reason ?? `${kind} upgrade`, ...(o.mode ? { mode: o.mode } : {}), ...(o.wait !== undefined ? { wait: o.wait } : {}), ...(o.timeout ? { timeout: o.timeout } : {}) }, {
          labels: { trigger: kind, packages: clip(changes.join(', ') || '(unknown)'), package_count: String(changes.length) },
          transaction: changes,
          progress: log,
        });
        ok = result.ok;
        message = ok ? describePreUpgrade(result).join('; ') : preUpgradeFailure(result);
      } catch (e) {
        ok = false;
        message = (e as Error).message;
      }
      stamps.write(key, kind, ok, message);
      try {
        fs.mkdirSync(stateDir(), { recursive: true, mode: 0o700 });
        fs.writeFileSync(path.join(stateDir(), 'last-hook.json'), JSON.stringify({ at: new Date().toISOString(), kind, ok, message, packages: changes.length }));
      } catch {
        // the state directory is optional
      }
      if (ctx.out.json && result) ctx.out.printJson(preUpgradeJson(result));
      if (ok) {
        for (const l of message.split('; ')) log(l);
        return;
      }
      if (fail === 'open') {
        log(`WARNING: the pre-upgrade rollback point FAILED: ${message}`);
        log('WARNING: continuing the upgrade without it (fail open; "lifeboat hooks install ' + kind + ' --fail closed" stops upgrades instead)');
        return;
      }
      throw new UsageError(`the pre-upgrade rollback point failed, stopping the upgrade (fail closed): ${message}`, EXIT.error);
    });
}

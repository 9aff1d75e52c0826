import { Command, Option } from 'commander';
import { programVersion } from '../util/version.js';
import { registerInit } from './commands/init.js';
import { registerKey } from './commands/key.js';
import { registerCat } from './commands/cat.js';
import { registerCache } from './commands/cache.js';
import { registerBackup } from './commands/backup.js';
import { registerSnapshots } from './commands/snapshots.js';
import { registerRestore } from './commands/restore.js';
import { registerDump } from './commands/dump.js';
import { registerLs } from './commands/ls.js';
import { registerFind } from './commands/find.js';
import { registerDiff } from './commands/diff.js';
import { registerDb } from './commands/db.js';
import { registerCheck } from './commands/check.js';
import { registerPrune } from './commands/prune.js';
import { registerRepair } from './commands/repair.js';
import { registerList } from './commands/list.js';
import { registerUnlock } from './commands/unlock.js';
import { registerInstanceSnapshot } from './commands/instance-snapshot.js';
import { registerPreUpgrade } from './commands/pre-upgrade.js';
import { registerHooks } from './commands/hooks.js';
import { registerGuard } from './commands/guard.js';
import { registerForget } from './commands/forget.js';
import { registerAgent } from './commands/agent.js';
import { registerStatus } from './commands/status.js';
import { registerRestoreTest } from './commands/restore-test.js';
import { registerDoctor } from './commands/doctor.js';

/** The whole command-line program; each command lives in its own file under commands/. */
export function buildProgram(): Command {
  const program = new Command('lifeboat')
    .description('lifeboat: deduplicated, compressed, encrypted backups to S3-compatible storage')
    .version(programVersion(), '-V, --version')
    .option('--config <file>', 'config file (env LIFEBOAT_CONFIG; default /etc/lifeboat/lifeboat.yaml when it exists)')
    .option('-r, --repo <location>', 'repository: a directory or s3:http[s]://host[:port]/bucket[/prefix] (env LIFEBOAT_REPOSITORY)')
    .option('-p, --password-file <file>', 'read the password from a file (env LIFEBOAT_PASSWORD_FILE, or LIFEBOAT_PASSWORD)')
    .option('--cache-dir <dir>', 'local cache directory (env LIFEBOAT_CACHE_DIR)')
    .option('--retry-lock <duration>', 'keep trying to take the repository lock this long (e.g. 30s, 5m)')
    .option('--upload-concurrency <n>', 'packs uploaded at once, 1-64 (env LIFEBOAT_UPLOAD_CONCURRENCY; default 4)')
    .option('--cacert <file>', 'trust this PEM CA certificate as well, for a private CA (env LIFEBOAT_CACERT)')
    .option('--insecure-tls', 'do not verify the S3 endpoint\'s TLS certificate (never in production)')
    .option('--append-only', 'never delete anything but locks: forget, prune and repair refuse (env LIFEBOAT_APPEND_ONLY=1)')
    .option('--no-lock', 'restore and dump without a shared lock (a read-only repository; prune may then remove data mid-read)')
    .option('--json', 'print results as JSON')
    .option('-q, --quiet', 'print only results and errors')
    .addOption(new Option('-v, --verbose', 'more diagnostics on stderr (repeatable)').argParser((_v, prev: number) => prev + 1).default(0))
    .showHelpAfterError()
    .configureHelp({ showGlobalOptions: true });

  registerInit(program);
  registerKey(program);
  registerCat(program);
  registerCache(program);
  registerBackup(program);
  registerSnapshots(program);
  registerRestore(program);
  registerDump(program);
  registerLs(program);
  registerFind(program);
  registerDiff(program);
  registerDb(program);
  registerCheck(program);
  registerPrune(program);
  registerRepair(program);
  registerList(program);
  registerUnlock(program);
  registerInstanceSnapshot(program);
  registerPreUpgrade(program);
  registerHooks(program);
  registerGuard(program);
  registerForget(program);
  registerAgent(program);
  registerStatus(program);
  registerRestoreTest(program);
  registerDoctor(program);
  return program;
}

/** Small process helpers for the packaging build: run a command, fail with its output. */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';

export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const tail = `${String(r.stdout ?? '')}\n${String(r.stderr ?? '')}`.trim().split('\n').slice(-40).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${tail}`);
  }
  return String(r.stdout ?? '');
}

export function log(line: string): void {
  process.stderr.write(`package: ${line}\n`);
}

/**
 * SIGTERM/SIGINT while a command holds the repository lock (the agent stopping a job, systemd
 * stopping the service, Ctrl-C): finish and upload the packs being written and write an index
 * checkpoint (so a later backup reuses what was uploaded), release the lock, and exit 143/130 —
 * within about 20 s. A second signal exits at once (the lock then goes stale).
 */
import type { Repository } from '../repo/repository.js';
import type { RepoLock } from '../repo/lock.js';

const FLUSH_LIMIT_MS = 20_000;

/** `lock` may still be being acquired when the signal lands; it is awaited (at most 5 s) and released. */
export function releaseOnSignal(repo: Repository, lock: Promise<RepoLock | null>, flush: boolean): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    const code = signal === 'SIGINT' ? 130 : 143;
    if (stopping) process.exit(code);
    stopping = true;
    process.stderr.write(`lifeboat: ${signal}: stopping${flush ? ' (writing what was uploaded into the index)' : ''}, releasing the lock\n`);
    const limit = new Promise<void>((resolve) => setTimeout(resolve, FLUSH_LIMIT_MS).unref());
    const work = (async () => {
      if (flush) {
        try {
          await Promise.race([repo.flush(), limit]);
        } catch (e) {
          process.stderr.write(`lifeboat: could not write the index checkpoint: ${(e as Error).message}\n`);
        }
      }
      const release = lock.then((held) => held?.release(), () => undefined);
      await Promise.race([release, new Promise<void>((resolve) => setTimeout(resolve, 5000).unref())]);
    })();
    void work.finally(() => process.exit(code));
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

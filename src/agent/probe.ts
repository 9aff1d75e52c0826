/** Is the repository there? One `stat config` against the store, bounded in time. */
import { openStorage } from '../storage/open.js';

export async function probeRepository(location: string, timeoutMs = 15_000): Promise<{ reachable: boolean; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    const storage = await Promise.race([openStorage(location, { retry: { attempts: 2 } }), timeout]);
    try {
      const info = await Promise.race([storage.stat('config'), timeout]);
      return info ? { reachable: true } : { reachable: false, error: 'no repository there (no config object)' };
    } finally {
      await storage.close().catch(() => undefined);
    }
  } catch (e) {
    return { reachable: false, error: (e as Error).message.split('\n')[0] };
  } finally {
    clearTimeout(timer);
  }
}

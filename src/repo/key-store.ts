import type { Storage } from '../storage/types.js';
import { StorageError } from '../storage/errors.js';
import { IntegrityError, WrongPasswordError } from './errors.js';
import { parseKeyFile, unwrapMasterKey, type KeyFile } from './keyfile.js';

export interface StoredKey {
  id: string;
  file: KeyFile;
}

/** Every key file in the repository; damaged ones are returned separately, not dropped silently. */
export async function readKeyFiles(storage: Storage): Promise<{ keys: StoredKey[]; damaged: IntegrityError[] }> {
  const keys: StoredKey[] = [];
  const damaged: IntegrityError[] = [];
  for await (const o of storage.list('keys/')) {
    const id = o.name.slice('keys/'.length);
    if (!/^[0-9a-f]{64}$/.test(id)) continue;
    let bytes: Buffer;
    try {
      bytes = await storage.get(o.name);
    } catch (e) {
      if (e instanceof StorageError && e.code === 'not-found') continue;
      throw e;
    }
    try {
      keys.push({ id, file: parseKeyFile(o.name, bytes) });
    } catch (e) {
      if (e instanceof IntegrityError) damaged.push(e);
      else throw e;
    }
  }
  keys.sort((a, b) => a.file.created.localeCompare(b.file.created) || a.id.localeCompare(b.id));
  return { keys, damaged };
}

/** Finds the key file the password opens and returns it with the master key. */
export async function unlockMasterKey(storage: Storage, password: string): Promise<{ key: StoredKey; master: Buffer }> {
  const { keys, damaged } = await readKeyFiles(storage);
  let tried = 0;
  for (const key of keys) {
    let master: Buffer | null;
    try {
      master = await unwrapMasterKey(key.file, password);
    } catch (e) {
      // parameters a reader must refuse (e.g. absurd memlimit) mean a damaged key file
      damaged.push(new IntegrityError(`keys/${key.id}`, (e as Error).message));
      continue;
    }
    tried++;
    if (master) return { key, master };
  }
  // no key file could even be tried: say which is damaged, not "wrong password"
  if (tried === 0 && damaged.length > 0) throw damaged[0]!;
  throw new WrongPasswordError();
}

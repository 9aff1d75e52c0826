import os from 'node:os';
import { open as aeadOpen, seal, AuthError } from './aead.js';
import { deriveKeyFromPassword, defaultKdfParams, type KdfParams } from './kdf.js';
import { IntegrityError, UnsupportedVersionError } from './errors.js';
import { objectAd } from './object-types.js';
import { sha256Hex } from './hash.js';
import { checkShape, integer, literal, matching, object, ShapeError, string, type Infer } from '../util/json-shape.js';

/** Format §2.2: readers refuse more than 1 GiB of memory or 100 passes. */
export const MAX_MEMLIMIT = 1024 * 1024 * 1024;
export const MAX_OPSLIMIT = 100;

const b64 = matching(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');

const keyFileSchema = object({
  version: integer(),
  created: string,
  hostname: string,
  username: string,
  kdf: object({
    algorithm: literal('argon2id13'),
    // bounds a reader enforces so a hostile key file cannot hang or exhaust the machine
    opslimit: integer(1, MAX_OPSLIMIT),
    memlimit: integer(8192, MAX_MEMLIMIT),
    salt: b64,
  }),
  data: b64,
});

export type KeyFile = Infer<typeof keyFileSchema>;

export interface EncodedKeyFile {
  id: string;
  bytes: Buffer;
  file: KeyFile;
}

/** Wraps the master key under a password into a new key file. */
export async function createKeyFile(
  master: Uint8Array,
  password: string,
  params: KdfParams = defaultKdfParams(),
): Promise<EncodedKeyFile> {
  const kek = await deriveKeyFromPassword(password, params);
  const file: KeyFile = {
    version: 1,
    created: new Date().toISOString(),
    hostname: os.hostname(),
    username: safeUsername(),
    kdf: {
      algorithm: 'argon2id13',
      opslimit: params.opslimit,
      memlimit: params.memlimit,
      salt: Buffer.from(params.salt).toString('base64'),
    },
    data: seal(kek, master, objectAd('key')).toString('base64'),
  };
  const bytes = Buffer.from(JSON.stringify(file, null, 2) + '\n', 'utf8');
  return { id: sha256Hex(bytes), bytes, file };
}

/** Parses a key file's bytes, checking that they match their name. */
export function parseKeyFile(name: string, bytes: Buffer): KeyFile {
  const id = name.slice(name.lastIndexOf('/') + 1);
  if (sha256Hex(bytes) !== id) throw new IntegrityError(name, 'content does not match its name (SHA-256)');
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new IntegrityError(name, 'not valid JSON');
  }
  let file: KeyFile;
  try {
    file = checkShape(keyFileSchema, json);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    const v = (json as { version?: unknown } | null)?.version;
    if (typeof v === 'number' && v !== 1) throw new UnsupportedVersionError(`key file ${name}`, v);
    throw new IntegrityError(name, `malformed key file (${e.at || 'root'})`);
  }
  if (file.version !== 1) throw new UnsupportedVersionError(`key file ${name}`, file.version);
  return file;
}

/** The master key if the password opens this key file, else null. */
export async function unwrapMasterKey(file: KeyFile, password: string): Promise<Buffer | null> {
  const params: KdfParams = {
    opslimit: file.kdf.opslimit,
    memlimit: file.kdf.memlimit,
    salt: Buffer.from(file.kdf.salt, 'base64'),
  };
  const kek = await deriveKeyFromPassword(password, params);
  try {
    const master = aeadOpen(kek, Buffer.from(file.data, 'base64'), objectAd('key'));
    return master.length === 32 ? master : null;
  } catch (e) {
    if (e instanceof AuthError) return null;
    throw e;
  }
}

function safeUsername(): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}

import { open as aeadOpen, seal } from './aead.js';
import { decodePayload, encodePayload } from './compress.js';
import { IntegrityError } from './errors.js';
import { objectAd, type ObjectType } from './object-types.js';
import { checkShape, ShapeError, type Check } from '../util/json-shape.js';

/** seal(K_enc, payload(data), AD = "lifeboat/v1/<type>") — format §3, §4. */
export function sealObject(key: Uint8Array, type: ObjectType, data: Buffer): Buffer {
  return seal(key, encodePayload(data), objectAd(type));
}

/** Opens a sealed object; any failure is an IntegrityError naming the object. */
export function openObject(key: Uint8Array, type: ObjectType, name: string, sealed: Buffer): Buffer {
  let payload: Buffer;
  try {
    payload = aeadOpen(key, sealed, objectAd(type));
  } catch {
    throw new IntegrityError(name, 'authentication failed (altered, truncated or not a lifeboat object)');
  }
  try {
    return decodePayload(payload);
  } catch (e) {
    throw new IntegrityError(name, `cannot decode payload: ${(e as Error).message}`);
  }
}

export function sealJson(key: Uint8Array, type: ObjectType, value: unknown): Buffer {
  return sealObject(key, type, Buffer.from(JSON.stringify(value), 'utf8'));
}

/** Opens a sealed JSON object and checks its shape. */
export function openJson<T>(
  key: Uint8Array,
  type: ObjectType,
  name: string,
  sealed: Buffer,
  schema: Check<T>,
): T {
  const data = openObject(key, type, name, sealed);
  let json: unknown;
  try {
    json = JSON.parse(data.toString('utf8'));
  } catch {
    throw new IntegrityError(name, 'not valid JSON');
  }
  try {
    return checkShape(schema, json);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    throw new IntegrityError(name, `malformed ${type} (${e.at || 'root'}: ${e.message})`);
  }
}

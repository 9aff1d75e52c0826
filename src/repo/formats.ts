/** Shapes and types of the JSON documents of format v1 (§7, §9, §10, §11). */
import {
  array, boolean, integer, literal, matching, object, oneOf, optional, record, string, withDefault, type Check, type Infer,
} from '../util/json-shape.js';

const hexId = matching(/^[0-9a-f]{64}$/, 'expected a 64-digit hex id');
const u32 = integer(0, 0xffffffff);
const size = integer(0);
const positive = integer(1);
const int = integer();

export const FORMAT_VERSION = 1;

export const configSchema = object({
  version: int,
  id: hexId,
  created: string,
  chunker: object({
    algorithm: literal('fastcdc-gear32-v1'),
    min: positive,
    avg: positive,
    max: positive,
  }),
  pack_size: positive,
});
export type RepoConfig = Infer<typeof configSchema>;

export const indexFileSchema = object({
  version: int,
  supersedes: withDefault(array(hexId), () => []),
  packs: array(
    object({
      id: hexId,
      type: oneOf(['data', 'tree'] as const),
      size,
      blobs: array(object({ id: hexId, offset: size, length: u32, raw_length: u32 }), 1),
    }),
  ),
});
export type IndexFile = Infer<typeof indexFileSchema>;
export type IndexPack = IndexFile['packs'][number];

const snapshotFields = object(
  {
    version: int,
    time: string,
    tree: hexId,
    paths: array(string),
    hostname: string,
    username: optional(string),
    uid: optional(int),
    gid: optional(int),
    tags: withDefault(array(string), () => []),
    parent: optional(hexId),
    source: object({ type: string }, { passthrough: true }),
    summary: optional(record((v: unknown) => v)),
    program_version: optional(string),
  },
  { passthrough: true },
);
/** A snapshot; keys other than these are kept (passthrough), as `source`'s are. */
export type Snapshot = Infer<typeof snapshotFields> & { source: { type: string; [k: string]: unknown }; [k: string]: unknown };
export const snapshotSchema: Check<Snapshot> = snapshotFields as Check<Snapshot>;

export const lockSchema = object({
  time: string,
  exclusive: boolean,
  hostname: string,
  username: string,
  pid: int,
  uid: int,
  gid: int,
  nonce: string,
});
export type LockInfo = Infer<typeof lockSchema>;

/** zod schemas and types of the JSON documents of format v1 (§7, §9, §10, §11). */
import { z } from 'zod';

const hexId = z.string().regex(/^[0-9a-f]{64}$/, 'expected a 64-digit hex id');
const u32 = z.number().int().min(0).max(0xffffffff);
const size = z.number().int().min(0);

export const FORMAT_VERSION = 1;

export const configSchema = z.object({
  version: z.number().int(),
  id: hexId,
  created: z.string(),
  chunker: z.object({
    algorithm: z.literal('fastcdc-gear32-v1'),
    min: z.number().int().positive(),
    avg: z.number().int().positive(),
    max: z.number().int().positive(),
  }),
  pack_size: z.number().int().positive(),
});
export type RepoConfig = z.infer<typeof configSchema>;

export const indexFileSchema = z.object({
  version: z.number().int(),
  supersedes: z.array(hexId).default([]),
  packs: z.array(
    z.object({
      id: hexId,
      type: z.enum(['data', 'tree']),
      size,
      blobs: z.array(z.object({ id: hexId, offset: size, length: u32, raw_length: u32 })).min(1),
    }),
  ),
});
export type IndexFile = z.infer<typeof indexFileSchema>;
export type IndexPack = IndexFile['packs'][number];

export const snapshotSchema = z
  .object({
    version: z.number().int(),
    time: z.string(),
    tree: hexId,
    paths: z.array(z.string()),
    hostname: z.string(),
    username: z.string().optional(),
    uid: z.number().int().optional(),
    gid: z.number().int().optional(),
    tags: z.array(z.string()).default([]),
    parent: hexId.optional(),
    source: z.object({ type: z.string() }).passthrough(),
    summary: z.record(z.string(), z.unknown()).optional(),
    program_version: z.string().optional(),
  })
  .passthrough();
export type Snapshot = z.infer<typeof snapshotSchema>;

export const lockSchema = z.object({
  time: z.string(),
  exclusive: z.boolean(),
  hostname: z.string(),
  username: z.string(),
  pid: z.number().int(),
  uid: z.number().int(),
  gid: z.number().int(),
  nonce: z.string(),
});
export type LockInfo = z.infer<typeof lockSchema>;

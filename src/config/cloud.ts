import { z } from 'zod';

/**
 * The config file's OpenStack sections (issue 7). Owned by the cloud work; the top-level config
 * schema (src/config/schema.ts) imports these so every section is validated in one place.
 */

/** `cloud:` — which clouds.yaml entry this VM lives in: its name, or the name with overrides. */
export const cloudSectionSchema = z.union([
  z.string().min(1),
  z
    .object({
      /** clouds.yaml entry; default: OS_CLOUD, then the only entry. */
      name: z.string().min(1).optional(),
      /** An explicit clouds.yaml path instead of the standard places. */
      clouds_file: z.string().min(1).optional(),
      region: z.string().min(1).optional(),
      interface: z.enum(['public', 'internal', 'admin']).optional(),
      /** An openrc file to read OS_* variables from (parsed, never run: Horizon's prompts for the password). */
      openrc: z.string().min(1).optional(),
      /** This VM's server id, when discovery (metadata service, config drive, DMI) cannot find it. */
      server_id: z.string().regex(/^[0-9a-fA-F-]{32,36}$/).optional(),
      /** Per-request HTTP timeout, e.g. "60s" (volume-backed createImage can take minutes: default 180s). */
      api_timeout: z.string().min(1).optional(),
    })
    .strict(),
]);

/** One named rotation, e.g. `daily: {schedule: "0 3 * * *", rotation: 7}` (seed 003's scheme). */
export const instanceSnapshotRotationSchema = z
  .object({
    schedule: z.string().min(1).optional(),
    rotation: z.number().int().min(0),
    wait: z.boolean().optional(),
    timeout: z.string().min(1).optional(),
  })
  .strict();

/** `instance_snapshots:` — named rotations plus the pre-upgrade policy used by the package hooks. */
export const instanceSnapshotsSchema = z
  .object({
    rotations: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/), instanceSnapshotRotationSchema).default({}),
    pre_upgrade: z
      .object({
        /** default both; when unset, a part that cannot run here (no cloud, no repository) is skipped */
        mode: z.enum(['snapshot', 'files', 'both']).optional(),
        rotation: z.number().int().min(0).default(3),
        paths: z.array(z.string().regex(/^\//, 'must be an absolute path')).optional(),
        fail: z.enum(['open', 'closed']).default('open'),
        /** wait for the instance snapshot to complete before the upgrade goes on (default true) */
        wait: z.boolean().optional(),
        /** How long the snapshot may take (waiting for a busy server, and with wait). */
        timeout: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type CloudSection = z.infer<typeof cloudSectionSchema>;
export type InstanceSnapshotsSection = z.infer<typeof instanceSnapshotsSchema>;

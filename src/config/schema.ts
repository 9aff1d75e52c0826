import { z } from 'zod';
import { cloudSectionSchema, instanceSnapshotsSchema } from './cloud.js';
import { databasesSectionSchema } from './databases.js';
import { backupsSectionSchema } from './backups.js';
import { checkSchema, restoreTestSchema, retentionSchema } from './maintenance.js';
import { agentSectionSchema, healthchecksSectionSchema, metricsSectionSchema, watchSectionSchema } from './agent.js';

/**
 * The whole config file. Each section is its own small schema in its own file; the top level is
 * strict, so a misspelt section is an error naming its line.
 */
export const configSchema = z
  .object({
    /** A directory or s3:https://host[:port]/bucket[/prefix]; --repo and LIFEBOAT_REPOSITORY win. */
    repository: z.string().min(1).optional(),
    /** The repository password's file; --password-file, LIFEBOAT_PASSWORD_FILE and LIFEBOAT_PASSWORD win. */
    password_file: z.string().min(1).optional(),
    /** The local cache directory; --cache-dir and LIFEBOAT_CACHE_DIR win. */
    cache_dir: z.string().min(1).optional(),
    /** Never delete anything but locks (forget, prune, repair refuse); --append-only and LIFEBOAT_APPEND_ONLY=1 too. */
    append_only: z.boolean().optional(),
    /** S3 Object Lock retention on every object written but locks; LIFEBOAT_OBJECT_LOCK_DAYS / _MODE win. */
    object_lock: z
      .object({ mode: z.enum(['governance', 'compliance']).default('governance'), days: z.number().int().min(1).max(36_500) })
      .strict()
      .optional(),
    databases: databasesSectionSchema.default({}),
    cloud: cloudSectionSchema.optional(),
    instance_snapshots: instanceSnapshotsSchema.optional(),
    // the agent (docs/configuration.md, "The agent")
    backups: backupsSectionSchema.default({}),
    retention: retentionSchema.optional(),
    check: checkSchema.optional(),
    restore_test: restoreTestSchema.optional(),
    agent: agentSectionSchema.prefault({}),
    watch: watchSectionSchema.prefault({}),
    healthchecks: healthchecksSectionSchema.optional(),
    metrics: metricsSectionSchema.prefault({}),
  })
  .strict();

export type LifeboatConfig = z.infer<typeof configSchema>;

import { z } from 'zod';
import { jobFields } from './schedule.js';

/**
 * The `backups:` section: named file backups the agent runs on schedule (`lifeboat run NAME` runs one
 * now). Each becomes `lifeboat backup PATHS` with the entry's options; snapshots carry the entry's tags.
 */
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, _ . - (starting with a letter or digit)');
const tag = z.string().regex(/^[^,\s]+$/, 'a tag without commas or spaces');

export const backupEntrySchema = z
  .object({
    paths: z.array(z.string().regex(/^\//, 'must be an absolute path')).min(1),
    exclude: z.array(z.string().min(1)).default([]),
    iexclude: z.array(z.string().min(1)).default([]),
    exclude_file: z.array(z.string().min(1)).default([]),
    exclude_caches: z.boolean().default(false),
    exclude_larger_than: z.string().regex(/^\d+(\.\d+)?\s*[kKmMgGtT]?[bB]?$/, 'a size such as 500k, 10M or 1G').optional(),
    one_file_system: z.boolean().default(false),
    tags: z.array(tag).default([]),
    /** Watch the paths for changes (see `watch:`); default: watch.enabled. */
    watch: z.boolean().optional(),
    ...jobFields,
  })
  .strict();

export const backupsSectionSchema = z.record(name, backupEntrySchema, { error: 'expected a mapping of backup names to entries' });

export type BackupEntry = z.infer<typeof backupEntrySchema>;
export type BackupsSection = z.infer<typeof backupsSectionSchema>;

import { z } from 'zod';
import { jobFields } from './schedule.js';

/**
 * Scheduled repository maintenance: `retention:` (forget with keep rules, then prune), `check:`
 * (structure plus a read-data subset) and `restore_test:` (restore a random sample and verify it).
 */
const count = z.union([z.number().int().min(-1), z.literal('unlimited')]).transform((v) => (v === 'unlimited' ? -1 : v));
const within = z.string().regex(/^(\d+[ymdh])+$/, 'a duration such as 1y2m3d4h');

export const retentionSchema = z
  .object({
    keep_last: count.optional(),
    keep_hourly: count.optional(),
    keep_daily: count.optional(),
    keep_weekly: count.optional(),
    keep_monthly: count.optional(),
    keep_yearly: count.optional(),
    keep_within: within.optional(),
    keep_within_hourly: within.optional(),
    keep_within_daily: within.optional(),
    keep_within_weekly: within.optional(),
    keep_within_monthly: within.optional(),
    keep_within_yearly: within.optional(),
    keep_tag: z.array(z.string().min(1)).default([]),
    /** Only this host's snapshots (default true: each VM forgets its own; false: every host's). */
    host_only: z.boolean().default(true),
    group_by: z.string().default('host,paths'),
    /** Prune after forgetting (default true). */
    prune: z.boolean().default(true),
    max_unused: z.string().min(1).optional(),
    max_repack_size: z.string().min(1).optional(),
    /** How long to wait for another host's lock (a prune elsewhere) before failing. */
    lock_wait: z.string().min(1).default('30m'),
    ...jobFields,
  })
  .strict()
  .superRefine((r, ctx) => {
    const rules = ['keep_last', 'keep_hourly', 'keep_daily', 'keep_weekly', 'keep_monthly', 'keep_yearly', 'keep_within',
      'keep_within_hourly', 'keep_within_daily', 'keep_within_weekly', 'keep_within_monthly', 'keep_within_yearly'] as const;
    if (!rules.some((k) => r[k] !== undefined) && r.keep_tag.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'no keep rule (keep_daily, keep_last, ...): it would remove every snapshot' });
    }
  });

export const checkSchema = z
  .object({
    /** Packs to read and verify: N% (random), n/t, a size such as 2G, `all`, or `none` (structure only). */
    read_data_subset: z
      .string()
      .regex(/^(all|none|\d+(\.\d+)?%|\d+\/\d+|\d+(\.\d+)?\s*[kKmMgGtT]?[bB]?)$/, 'expected all, none, N%, n/t or a size')
      .refine((v) => !v.endsWith('%') || (parseFloat(v) > 0 && parseFloat(v) <= 100), 'a percentage must be more than 0% and at most 100%')
      .refine((v) => !/^\d+\/\d+$/.test(v) || ((n, t) => n >= 1 && n <= t)(...(v.split('/').map(Number) as [number, number])), 'n/t needs 1 <= n <= t')
      .default('5%'),
    lock_wait: z.string().min(1).default('30m'),
    ...jobFields,
  })
  .strict();

export const restoreTestSchema = z
  .object({
    /** Files restored from each backup's latest snapshot (random; the largest is always among them). */
    files: z.number().int().min(1).default(20),
    /** Stop adding files to the sample past this many bytes per snapshot. */
    max_bytes: z.string().min(1).default('1G'),
    /** Also restore the latest dump of each database entry (default true). */
    databases: z.boolean().default(true),
    lock_wait: z.string().min(1).default('30m'),
    ...jobFields,
  })
  .strict();

export type RetentionSection = z.infer<typeof retentionSchema>;
export type CheckSection = z.infer<typeof checkSchema>;
export type RestoreTestSection = z.infer<typeof restoreTestSchema>;

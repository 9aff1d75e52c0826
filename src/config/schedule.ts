/**
 * Schedules, job hooks and priorities shared by every scheduled section (backups, databases,
 * retention, check, restore_test): a cron expression (croner: 5 fields, or 6 with seconds first),
 * an optional random delay, before/after/on_failure commands, and nice/ionice.
 */
import { Cron } from 'croner';
import { z } from 'zod';
import { durationSchema } from './duration.js';

/** A cron expression croner accepts, e.g. "0 3 * * *", "*\/15 * * * *", "@daily", "*\/5 * * * * *" (seconds). */
export const cronSchema = z.string().min(1).superRefine((v, ctx) => {
  try {
    new Cron(v, { paused: true }).stop();
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `invalid cron expression "${v}": ${(e as Error).message}` });
  }
});

/** A command run by /bin/sh -c (a string) or directly (a list). */
const hookCommand = z.union([z.string().min(1), z.array(z.string()).min(1)], { error: 'expected a command (a string for sh -c, or a list)' });
const hookList = z.union([hookCommand, z.array(hookCommand)]).transform((v): Array<string | string[]> => {
  if (typeof v === 'string') return [v];
  // a list of strings is one argv; a list holding lists/strings mixed is several commands
  if (v.every((x) => typeof x === 'string')) return [v as string[]];
  return v as Array<string | string[]>;
});

export const priorityFields = {
  /** CPU priority of the job's process (nice, -20..19; default 10 for backup work). */
  nice: z.number().int().min(-20).max(19).optional(),
  /** I/O priority: idle, best-effort (optionally best-effort:0..7) or realtime; default best-effort:7. */
  ionice: z.string().regex(/^(idle|best-effort(:[0-7])?|realtime(:[0-7])?)$/, 'expected idle, best-effort[:0-7] or realtime[:0-7]').optional(),
};

/** The fields a scheduled job accepts besides its own. */
export const jobFields = {
  /** When the job runs (cron). Without one, the job runs only through `lifeboat run NAME`. */
  schedule: cronSchema.optional(),
  /** A random delay up to this long after each scheduled time (spreads many VMs' load). */
  jitter: durationSchema.optional(),
  /** Commands run before the job (a failure fails the job), after it succeeded, and after it failed. */
  before: hookList.optional(),
  after: hookList.optional(),
  on_failure: hookList.optional(),
  ...priorityFields,
};

export type HookCommands = Array<string | string[]>;

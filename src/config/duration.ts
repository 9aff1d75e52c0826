import { z } from 'zod';
import { parseDuration } from '../util/duration.js';

/** A duration such as `90s`, `5m`, `2h`, `1h30m` (a bare number is seconds), parsed to milliseconds. */
export const durationSchema = z.union([z.string(), z.number()], { error: 'expected a duration such as 30m or 2h' }).transform((v, ctx) => {
  try {
    const ms = parseDuration(String(v));
    if (ms <= 0) throw new Error(`invalid duration "${v}" (must be more than 0)`);
    return ms;
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

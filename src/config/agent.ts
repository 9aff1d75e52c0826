import { z } from 'zod';
import { durationSchema } from './duration.js';
import { priorityFields } from './schedule.js';

/** `agent:` — how `lifeboat agent` runs its jobs. */
export const agentSectionSchema = z
  .object({
    /** The state database's directory (default /var/lib/lifeboat for root, else ~/.local/state/lifeboat). */
    state_dir: z.string().min(1).optional(),
    /** The control socket (default /run/lifeboat/agent.sock for root, else in $XDG_RUNTIME_DIR). */
    socket: z.string().min(1).optional(),
    /** A job due while its previous run still runs: `skip` it (logged) or `queue` one more run. */
    overlap: z.enum(['skip', 'queue']).default('skip'),
    /** Run once at start each job whose scheduled time passed while the agent was down. */
    catch_up: z.boolean().default(true),
    /** Jobs run at once (others wait their turn; default 1). */
    max_concurrent: z.number().int().min(1).max(16).default(1),
    /** Attempts after a failed run, each after a doubling delay (initial_delay, capped at max_delay). */
    retries: z
      .object({
        attempts: z.number().int().min(0).max(20).default(3),
        initial_delay: durationSchema.prefault('1m'),
        max_delay: durationSchema.prefault('30m'),
      })
      .strict()
      .prefault({}),
    /** How long backups and dumps wait for a lock held by another host (e.g. its prune) before failing. */
    lock_wait: z.string().regex(/^(\d+[smhd])+$/, 'a duration such as 30m').default('30m'),
    /** How long a job may run (default 24h); it is then stopped and counts as failed. */
    job_timeout: durationSchema.prefault('24h'),
    /** Log lines as text (default) or one JSON object per line. */
    log_format: z.enum(['text', 'json']).default('text'),
    ...priorityFields,
  })
  .strict();

/** `watch:` — the watcher journal. */
export const watchSectionSchema = z
  .object({
    /** Watch every backup's paths (a backup's own `watch:` wins). */
    enabled: z.boolean().default(false),
    /** Back up a watched backup this long after its last change (continuous mode); off when unset. */
    continuous: durationSchema.optional(),
    /** A full scan (the backup job) at least this often, whatever the watcher saw (default 1 day). */
    full_scan_interval: durationSchema.prefault('24h'),
    /** Changes closer together than this are one event. */
    debounce: durationSchema.prefault('2s'),
  })
  .strict();

const url = z.string().regex(/^https?:\/\/\S+$/, 'an http(s) URL');

/** `healthchecks:` — healthchecks.io-style ping URLs per job (URL/start, URL, URL/fail). */
export const healthchecksSectionSchema = z
  .object({
    /** job name (a backup's name, db:NAME, retention, check, restore_test) → ping URL */
    jobs: z.record(z.string().min(1), url).default({}),
    /** A URL pinged for every job that has none of its own. */
    default: url.optional(),
    timeout: durationSchema.prefault('10s'),
  })
  .strict();

/** `metrics:` — Prometheus text at http://LISTEN/metrics. */
export const metricsSectionSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** host:port (default 127.0.0.1:9898); a bare port listens on 127.0.0.1. */
    listen: z.union([z.string().min(1), z.number().int().min(0).max(65535)]).default('127.0.0.1:9898').transform((v) => {
      const s = String(v);
      return /^\d+$/.test(s) ? `127.0.0.1:${s}` : s;
    }),
  })
  .strict();

export type AgentSection = z.infer<typeof agentSectionSchema>;
export type WatchSection = z.infer<typeof watchSectionSchema>;
export type HealthchecksSection = z.infer<typeof healthchecksSectionSchema>;
export type MetricsSection = z.infer<typeof metricsSectionSchema>;

/**
 * Which config file applies — without loading the YAML parser and the schema (config/load.ts),
 * which commands run with flags and environment alone never need.
 */
import fs from 'node:fs';
import path from 'node:path';

export const DEFAULT_CONFIG_FILE = '/etc/lifeboat/lifeboat.yaml';

/**
 * --config, else LIFEBOAT_CONFIG, else /etc/lifeboat/lifeboat.yaml when it exists. An explicitly
 * named file must exist (loading it says so); null when none applies.
 */
export function configFileFor(flag: string | undefined, env = process.env): string | null {
  const given = flag ?? env.LIFEBOAT_CONFIG;
  if (given) return path.resolve(given);
  return fs.existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : null;
}

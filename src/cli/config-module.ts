/**
 * The config file loader (YAML parser, zod schema: ≈ 200 ms of CPU to import) is loaded only when
 * a config file applies. main.ts calls preloadConfigModule() before the command runs; commands
 * then load the file synchronously through configModule().
 */
import { configFileFor } from '../config/locate.js';

type ConfigModule = typeof import('../config/load.js');
let loaded: ConfigModule | null = null;

/** Could a config file apply to this command line? (Errs on the side of loading.) */
export function mayUseConfig(argv: string[], env = process.env): boolean {
  return argv.some((a) => a === '--config' || a.startsWith('--config=')) || configFileFor(undefined, env) !== null;
}

export async function preloadConfigModule(): Promise<ConfigModule> {
  loaded ??= await import('../config/load.js');
  return loaded;
}

/** The loader; only after preloadConfigModule() (main.ts does it whenever mayUseConfig()). */
export function configModule(): ConfigModule {
  if (loaded === null) throw new Error('internal error: the config loader was not loaded');
  return loaded;
}

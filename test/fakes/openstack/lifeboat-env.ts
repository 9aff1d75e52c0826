/** A fake cloud + a local repository + a lifeboat config file, for the pre-upgrade, hooks and guard e2e tests. */
import fs from 'node:fs';
import path from 'node:path';
import { FAST_KDF, runCli } from '../../helpers/cli.js';
import { startFakeCloud } from './fake-cloud.js';
import { cloudEnv } from './cli-env.js';

export type Fake = Awaited<ReturnType<typeof startFakeCloud>>;

export interface LifeboatEnv {
  f: Fake;
  dir: string;
  env: Record<string, string | undefined>;
  config: string;
  sample: string;
  cleanup: () => Promise<void>;
}

/** `preUpgrade` is the YAML body of instance_snapshots.pre_upgrade (indented by the caller's needs). */
export async function lifeboatEnv(o: { preUpgrade?: string; stepMs?: number } = {}): Promise<LifeboatEnv> {
  const f = await startFakeCloud({ stepMs: o.stepMs ?? 40 });
  const { dir, env } = cloudEnv(f.cloud);
  const sample = path.join(dir, 'etc-sample');
  fs.mkdirSync(sample);
  fs.writeFileSync(path.join(sample, 'app.conf'), 'setting = 1\n');
  fs.writeFileSync(path.join(dir, 'pw'), 'secret\n', { mode: 0o600 });
  const config = path.join(dir, 'lifeboat.yaml');
  fs.writeFileSync(
    config,
    `repository: ${path.join(dir, 'repo')}
password_file: ${path.join(dir, 'pw')}
cache_dir: ${path.join(dir, 'cache')}
cloud:
  name: fake
  clouds_file: ${path.join(dir, 'clouds.yaml')}
instance_snapshots:
  pre_upgrade:
    paths: [${sample}]
${o.preUpgrade ?? ''}`,
  );
  const full = {
    ...env,
    OS_CLOUD: undefined,
    OS_CLIENT_CONFIG_FILE: undefined,
    LIFEBOAT_CONFIG: config,
    LIFEBOAT_STATE_DIR: path.join(dir, 'state'),
    LIFEBOAT_RUN_DIR: path.join(dir, 'run'),
  };
  const init = await runCli(['init', ...FAST_KDF], full);
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  return {
    f,
    dir,
    env: full,
    config,
    sample,
    cleanup: async () => {
      await f.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function preUpgradeImages(f: Fake) {
  return [...f.cloud.images.values()].filter((i) => i['lifeboat:type'] === 'pre-upgrade');
}

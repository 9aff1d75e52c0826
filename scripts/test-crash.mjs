// npm run test:crash -- --points 50 [--seed N]: the crash matrix (test/faults/crash-matrix.test.ts and agent-crash.test.ts)
// with more kill points than CI's 10.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const value = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const env = { ...process.env, LIFEBOAT_CRASH_POINTS: value('points', '50'), LIFEBOAT_CRASH_SEED: value('seed', String(Date.now() % 100000)) };
console.error(`crash matrix: ${env.LIFEBOAT_CRASH_POINTS} points per operation, seed ${env.LIFEBOAT_CRASH_SEED}`);
const r = spawnSync('npx', ['vitest', 'run', 'test/faults/crash-matrix.test.ts', 'test/faults/agent-crash.test.ts', '--testTimeout', '0'], { stdio: 'inherit', env });
process.exit(r.status ?? 1);

import fs from 'node:fs';

/**
 * True when a process with this pid exists on this host and has not exited (EPERM: it exists but
 * is not ours). A zombie — exited, not yet reaped, as the children of a killed parent stay under
 * an init that reaps slowly (or never, in a container without one) — is dead.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (e) {
    // gone in between; without /proc (not Linux) kill(0) has the last word
    return (e as NodeJS.ErrnoException).code === 'ENOENT' && fs.existsSync('/proc/self/stat');
  }
  // pid (comm) state ...: comm may hold spaces and parentheses
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
}

/** pidAlive decides whether a lock's holder on this host is dead (stale lock): a zombie is dead. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { expect, it } from 'vitest';
import { pidAlive } from '../../src/util/process.js';

it('a live process is alive; an exited, unreaped one (a zombie) and a missing pid are not', async () => {
  // sh starts `true` in the background, then becomes `sleep`, which never reaps it: a zombie
  const parent = spawn('/bin/sh', ['-c', 'true & exec sleep 30'], { stdio: 'ignore' });
  try {
    let zombie = 0;
    for (let i = 0; i < 100 && !zombie; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const kids = fs.readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      zombie = kids.find((k) => fs.readFileSync(`/proc/${k}/stat`, 'utf8').includes(') Z ')) ?? 0;
    }
    expect(zombie).toBeGreaterThan(0);
    expect(pidAlive(parent.pid!)).toBe(true);
    expect(pidAlive(process.pid)).toBe(true);
    expect(pidAlive(zombie)).toBe(false);
    expect(pidAlive(2 ** 22 + 1)).toBe(false); // beyond pid_max
  } finally {
    parent.kill('SIGKILL');
  }
});

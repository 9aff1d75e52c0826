/**
 * Issue 9: a repository password file others can read. Given with --password-file or
 * LIFEBOAT_PASSWORD_FILE it is used with one warning line naming the fix (ssh's warning about an
 * unprotected key); named by the config, a group-readable one gets the same warning and a
 * world-readable one is refused (test/security/bad-config.test.ts). 0600 files and pipes get no
 * warning.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAST_KDF, runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/storage-backends.js';

describe('password file modes', () => {
  it('warns once, in one line, when the group or other users can read the password file; never for 0600 or a pipe', async () => {
    const dir = await makeTempDir();
    const pw = path.join(dir, 'pw');
    fs.writeFileSync(pw, 'pw-secret\n', { mode: 0o600 });
    const repo = path.join(dir, 'repo');
    const env = { LIFEBOAT_REPOSITORY: repo, LIFEBOAT_CACHE_DIR: path.join(dir, 'cache') };
    const init = await runCli(['init', '-p', pw, ...FAST_KDF], env);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);

    const quiet = await runCli(['snapshots', '-p', pw], env);
    expect(quiet.stderr).toBe('');

    fs.chmodSync(pw, 0o640);
    const group = await runCli(['snapshots', '--password-file', pw], env);
    expect(group.code).toBe(0);
    expect(group.stderr).toBe(`warning: password file ${pw} is readable by its group (mode 0640): chmod 600 ${pw}\n`);

    fs.chmodSync(pw, 0o644);
    const world = await runCli(['snapshots', '--json'], { ...env, LIFEBOAT_PASSWORD_FILE: pw });
    expect(world.code).toBe(0);
    expect(JSON.parse(world.stdout)).toEqual([]);
    expect(world.stderr).toBe(`warning: password file ${pw} is readable by other users (mode 0644): chmod 600 ${pw}\n`);
    expect(world.stderr).not.toContain('pw-secret');

    // a pipe has no mode to judge
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', ['-m', '0644', fifo]);
    const writer = spawn('/bin/sh', ['-c', `printf 'pw-secret\\n' > ${fifo}`], { stdio: 'ignore' });
    const piped = await runCli(['snapshots', '-p', fifo], env);
    writer.kill();
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stderr).toBe('');

    // named by the config: group-readable is warned about the same way (world-readable is refused)
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `repository: ${repo}\npassword_file: pw\ncache_dir: cache\n`);
    fs.chmodSync(pw, 0o640);
    const cfg = await runCli(['--config', config, 'snapshots']);
    expect(cfg.code).toBe(0);
    expect(cfg.stderr).toBe(`warning: password file ${pw} is readable by its group (mode 0640): chmod 600 ${pw}\n`);
    fs.chmodSync(pw, 0o644);
    const refused = await runCli(['--config', config, 'snapshots']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/lifeboat\.yaml:2: password_file: .*pw is readable by other users \(mode 0644\); refusing to use it: chmod 600 /);
  });
});

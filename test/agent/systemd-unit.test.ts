import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const unit = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../systemd/lifeboat.service');
function ensureAnalyze(): boolean {
  if (spawnSync('systemd-analyze', ['--version']).status === 0) return true;
  // Debian's systemd package carries it; installed when missing (CI runs as root)
  spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'systemd'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 600_000 });
  return spawnSync('systemd-analyze', ['--version']).status === 0;
}
const hasAnalyze = ensureAnalyze();

describe('systemd/lifeboat.service', () => {
  it('passes systemd-analyze verify (with ExecStart pointing at an existing binary)', () => {
    expect(hasAnalyze, 'systemd-analyze (package systemd)').toBe(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-unit-'));
    try {
      const text = fs.readFileSync(unit, 'utf8').replaceAll('/usr/bin/lifeboat', '/bin/true');
      fs.writeFileSync(path.join(dir, 'lifeboat.service'), text);
      const r = spawnSync('systemd-analyze', ['verify', path.join(dir, 'lifeboat.service')], { encoding: 'utf8' });
      expect(r.stderr.trim()).toBe('');
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the agent with the password as a credential, state, cache and runtime directories, and hardening', () => {
    const text = fs.readFileSync(unit, 'utf8');
    for (const line of [
      'ExecStart=/usr/bin/lifeboat agent',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'Restart=on-failure',
      'LoadCredential=password:/etc/lifeboat/password',
      'StateDirectory=lifeboat',
      'CacheDirectory=lifeboat',
      'RuntimeDirectory=lifeboat',
      'ProtectSystem=strict',
      'PrivateTmp=true',
      'NoNewPrivileges=true',
    ]) expect(text).toContain(line);
    expect(text).toMatch(/^CapabilityBoundingSet=.*CAP_DAC_READ_SEARCH.*CAP_CHOWN/m);
    expect(text).not.toMatch(/^Environment=.*PASSWORD/m);
  });
});

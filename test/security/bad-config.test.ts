/**
 * The bad-input corpus, part 1 (issue 9): malformed config files through the built CLI. Each one
 * yields exactly one line on stderr, `lifeboat: FILE:LINE: FIELD: reason` (YAML syntax errors:
 * `FILE:LINE: reason`), exit status 1, and no stack trace.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCliRepo, runCli, type RunResult } from '../helpers/cli.js';
import { tmpDir } from '../helpers/repo.js';

let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  dir = tmpDir('lifeboat-bad-config-');
  env = await initCliRepo('local', dir, []);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function expectOneLine(r: RunResult, file: string, line: number, rest: string | RegExp): void {
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr.endsWith('\n')).toBe(true);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1); // one line: no stack trace
  expect(r.stderr).not.toMatch(/^\s+at |Error:/m);
  const prefix = `lifeboat: ${file}:${line}: `;
  expect(r.stderr.startsWith(prefix)).toBe(true);
  const tail = r.stderr.slice(prefix.length).trimEnd();
  if (typeof rest === 'string') expect(tail).toBe(rest);
  else expect(tail).toMatch(rest);
}

/** [name, config text, line, the message after "FILE:LINE: "] */
const CORPUS: Array<[string, string, number, string | RegExp]> = [
  ['wrong type: a port that is a word', 'databases:\n  app:\n    type: postgres\n    port: abc\n', 4, 'databases.app.port: expected a number'],
  ['out of range port', 'databases:\n  app:\n    type: postgres\n    port: 70000\n', 4, /^databases\.app\.port: .*65535/],
  ['wrong type: repository is a number', 'repository: 42\n', 1, 'repository: expected a string'],
  ['wrong type: a section that is a list', 'databases: [a, b]\n', 1, 'databases: expected a record'],
  ['wrong type: paths is a string', 'backups:\n  sys:\n    paths: etc\n', 3, 'backups.sys.paths: expected an array'],
  ['wrong type: keep_daily is a word', 'retention:\n  keep_daily: seven\n', 2, /^retention\.keep_daily: /],
  ['unknown top-level key, did you mean', 'repositry: /x\n', 1, 'repositry: unknown key (did you mean repository?)'],
  ['unknown section, did you mean', 'retension:\n  keep_daily: 7\n', 1, 'retension: unknown key (did you mean retention?)'],
  ['unknown key in a database entry, did you mean', 'databases:\n  app:\n    type: postgres\n    hots: x\n', 4, 'databases.app.hots: unknown key (did you mean host?)'],
  ['unknown key in a backup entry, did you mean', "backups:\n  sys:\n    paths: [/etc]\n    exlude: ['*.tmp']\n", 4, 'backups.sys.exlude: unknown key (did you mean exclude?)'],
  ['unknown key without a near match', 'agent:\n  frobnicate: true\n', 2, 'agent.frobnicate: unknown key'],
  ['bad cron: minute 61', 'backups:\n  sys:\n    paths: [/etc]\n    schedule: "61 * * * *"\n', 4, /^backups\.sys\.schedule: invalid cron expression "61 \* \* \* \*": .*minute/],
  ['bad cron: words', 'backups:\n  sys:\n    paths: [/etc]\n    schedule: every day\n', 4, /^backups\.sys\.schedule: invalid cron expression "every day"/],
  ['bad cron: eight fields', 'check:\n  schedule: "* * * * * * * *"\n', 2, /^check\.schedule: invalid cron expression/],
  ['unknown database type', 'databases:\n  app:\n    type: oracle\n', 3, 'databases.app.type: must be one of postgres, mysql, sqlite, command'],
  ['database type missing', 'databases:\n  app:\n    host: x\n', 2, 'databases.app.type: required (postgres, mysql, sqlite or command)'],
  ['bad duration', 'databases:\n  app:\n    type: mysql\n    timeout: soon\n', 4, 'databases.app.timeout: invalid duration "soon" (use e.g. 30s, 5m, 1h30m)'],
  ['negative duration', 'backups:\n  sys:\n    paths: [/etc]\n    jitter: -5m\n', 4, /^backups\.sys\.jitter: invalid duration "-5m"/],
  ['bad keep_within duration', 'retention:\n  keep_within: 1w\n', 2, /^retention\.keep_within: /],
  ['YAML: unclosed flow mapping', 'databases:\n  app: {type: postgres\n', 3, /flow map|Flow map/i],
  ['YAML: tab indentation', 'databases:\n\tapp: x\n', 2, /tab/i],
  ['YAML: unterminated quote', '"unterminated: x\n', 2, /quote/i],
  ['YAML: duplicate key', 'databases:\n  app: {type: postgres}\n  app: {type: mysql}\n', 3, /^Map keys must be unique/],
  ['YAML: a list at the top', '- a\n- b\n', 1, 'the config must be a mapping of sections'],
  ['YAML: a scalar at the top', 'hello\n', 1, 'the config must be a mapping of sections'],
  ['inline password', 'databases:\n  app:\n    type: postgres\n    password: hunter2\n', 4, 'databases.app.password: passwords are not written in the config file: use password_file or password_env'],
  ['password_file and password_env', 'databases:\n  app:\n    type: postgres\n    password_file: a\n    password_env: B\n', 5, 'databases.app.password_env: give password_file or password_env, not both'],
  ['sqlite without a path', 'databases:\n  app:\n    type: sqlite\n', 2, 'databases.app.path: required'],
  ['nice out of range', 'backups:\n  sys:\n    paths: [/etc]\n    nice: 50\n', 4, /^backups\.sys\.nice: .*19/],
  ['bad ionice', 'backups:\n  sys:\n    paths: [/etc]\n    ionice: fast\n', 4, 'backups.sys.ionice: expected idle, best-effort[:0-7] or realtime[:0-7]'],
  ['databases: neither all nor a list', 'databases:\n  app:\n    type: mysql\n    databases: some\n', 4, 'databases.app.databases: expected "all" or a list of database names'],
  ['bad entry name', 'databases:\n  "bad name":\n    type: sqlite\n    path: x\n', 2, /^databases\.bad name: invalid name/],
  ['relative backup path', 'backups:\n  sys:\n    paths: [etc/relative]\n', 3, 'backups.sys.paths.0: must be an absolute path'],
  ['bad enum', 'agent:\n  overlap: maybe\n', 2, 'agent.overlap: expected "skip" or "queue"'],
  ['read_data_subset above 100%', 'check:\n  read_data_subset: 200%\n', 2, /^check\.read_data_subset: a percentage must be/],
  ['filename with a slash', 'databases:\n  c:\n    type: command\n    command: [dump]\n    filename: ../x\n', 5, 'databases.c.filename: a file name without slashes'],
  ['bad cloud interface', 'cloud:\n  name: x\n  interface: backstage\n', 3, /^cloud\.interface: /],
  ['YAML anchors that recurse', 'key: &a [*a]\n', 1, /^key: unknown key/],
];

describe('malformed config files: one line naming FILE:LINE: field, exit 1', () => {
  it(`the corpus has at least 25 configs (${CORPUS.length})`, () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(25);
  });

  const commands = [['db', 'list'], ['snapshots'], ['status']];
  CORPUS.forEach(([name, text, line, rest], i) => {
    it(name, async () => {
      const file = path.join(dir, `bad-${i}.yaml`);
      fs.writeFileSync(file, text);
      const cmd = commands[i % commands.length]!;
      expectOneLine(await runCli(['--config', file, ...cmd], env), file, line, rest);
    });
  });

  it('the agent refuses a bad config with the same line (and does not start)', async () => {
    const file = path.join(dir, 'agent-bad.yaml');
    fs.writeFileSync(file, 'backups:\n  sys:\n    paths: [/etc]\n    schedule: "61 * * * *"\n');
    const r = await runCli(['--config', file, 'agent'], env);
    expectOneLine(r, file, 4, /^backups\.sys\.schedule: invalid cron expression/);
  });
});

describe('secret files named by the config', () => {
  it('a missing password_file names the config line; a world-readable one is refused like ssh does; 0600 works', async () => {
    const file = path.join(dir, 'secret.yaml');
    const pw = path.join(dir, 'config-pw');
    fs.writeFileSync(file, `# the repository\npassword_file: config-pw\n`);
    const noEnv = { LIFEBOAT_REPOSITORY: env.LIFEBOAT_REPOSITORY!, LIFEBOAT_CACHE_DIR: env.LIFEBOAT_CACHE_DIR! };
    expectOneLine(await runCli(['--config', file, 'snapshots'], noEnv), file, 2, `password_file: cannot read ${pw}: ENOENT (no such file)`);
    fs.writeFileSync(pw, 'secret\n', { mode: 0o644 });
    fs.chmodSync(pw, 0o644);
    expectOneLine(await runCli(['--config', file, 'snapshots'], noEnv), file, 2, `password_file: ${pw} is readable by other users (mode 0644); refusing to use it: chmod 600 ${pw}`);
    fs.chmodSync(pw, 0o604);
    expect((await runCli(['--config', file, 'snapshots'], noEnv)).code).toBe(1);
    fs.chmodSync(pw, 0o640); // group-readable: used, with one warning line (doctor warns too)
    const ok = await runCli(['--config', file, 'snapshots'], noEnv);
    expect(ok.stderr).toBe(`warning: password file ${pw} is readable by its group (mode 0640): chmod 600 ${pw}\n`);
    expect(ok.code).toBe(0);
    fs.chmodSync(pw, 0o600);
    const quiet = await runCli(['--config', file, 'snapshots'], noEnv);
    expect(quiet.stderr).toBe('');
    expect(quiet.code).toBe(0);
    // a directory is not a password file
    fs.writeFileSync(file, `password_file: ${dir}\n`);
    expectOneLine(await runCli(['--config', file, 'snapshots'], noEnv), file, 1, `password_file: ${dir} is not a regular file`);
  });

  it("a database's world-readable password_file is refused with its config line", async () => {
    const file = path.join(dir, 'db-secret.yaml');
    const pw = path.join(dir, 'pg.pass');
    fs.writeFileSync(pw, 'pgpw\n');
    fs.chmodSync(pw, 0o644);
    fs.writeFileSync(file, 'databases:\n  app:\n    type: postgres\n    host: 127.0.0.1\n    port: 1\n    password_file: pg.pass\n    databases: [app]\n');
    const r = await runCli(['--config', file, 'db', 'dump', 'app'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:6: databases.app.password_file: ${pw} is readable by other users (mode 0644); refusing to use it: chmod 600 ${pw}`);
    expect(r.stderr).not.toContain('pgpw');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});

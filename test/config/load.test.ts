import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFileFor, loadConfigFile, parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/errors.js';
import { tmpDir } from '../helpers/repo.js';

const F = '/etc/lifeboat/lifeboat.yaml';

function errorOf(text: string): string {
  try {
    parseConfig(text, F);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('config file', () => {
  it('an empty file is an empty config; defaults fill each database entry', () => {
    const empty = parseConfig('', F);
    expect(empty.databases).toEqual({});
    expect(empty.repository).toBeUndefined();
    expect(empty.password_file).toBeUndefined();
    const c = parseConfig('databases:\n  app: {type: postgres, databases: [app, billing]}\n  my: {type: mysql}\n', F);
    expect(c.databases.app).toEqual({ type: 'postgres', port: 5432, user: 'postgres', databases: ['app', 'billing'], dump_args: [], timeout: 2 * 3600 * 1000, tags: [] });
    expect(c.databases.my).toMatchObject({ type: 'mysql', port: 3306, user: 'root', databases: 'all' });
  });

  it('paths are relative to the config file', () => {
    const c = parseConfig('repository: repo\npassword_file: pw\ncache_dir: c\ndatabases:\n  l: {type: sqlite, path: data/app.db}\n  p: {type: postgres, password_file: pg.pass}\n', F);
    expect(c.repository).toBe('/etc/lifeboat/repo');
    expect(c.password_file).toBe('/etc/lifeboat/pw');
    expect(c.cache_dir).toBe('/etc/lifeboat/c');
    expect(c.databases.l).toMatchObject({ path: '/etc/lifeboat/data/app.db' });
    expect(c.databases.p).toMatchObject({ password_file: '/etc/lifeboat/pg.pass' });
    expect(parseConfig('repository: s3:https://h/b\n', F).repository).toBe('s3:https://h/b');
  });

  it('every error names the file, the line and the field', () => {
    expect(errorOf('databases:\n  app:\n    type: postgres\n    port: abc\n')).toBe(`${F}:4: databases.app.port: expected a number`);
    expect(errorOf('repository: /r\nrepositry: /x\n')).toBe(`${F}:2: repositry: unknown key (did you mean repository?)`);
    expect(errorOf('databases:\n  app:\n    type: postgres\n    hots: x\n')).toBe(`${F}:4: databases.app.hots: unknown key (did you mean host?)`);
    expect(errorOf('databases:\n  app:\n    type: oracle\n')).toBe(`${F}:3: databases.app.type: must be one of postgres, mysql, sqlite, command`);
    expect(errorOf('databases:\n  app:\n    host: x\n')).toBe(`${F}:2: databases.app.type: required (postgres, mysql, sqlite or command)`);
    expect(errorOf('databases:\n  app:\n    type: sqlite\n')).toBe(`${F}:2: databases.app.path: required`);
    expect(errorOf('databases:\n  app:\n    type: mysql\n    timeout: soon\n')).toBe(`${F}:4: databases.app.timeout: invalid duration "soon" (use e.g. 30s, 5m, 1h30m)`);
    expect(errorOf('databases:\n  app:\n    type: mysql\n    databases: some\n')).toBe(`${F}:4: databases.app.databases: expected "all" or a list of database names`);
    expect(errorOf('databases:\n  "bad name":\n    type: sqlite\n    path: x\n')).toMatch(new RegExp(`^${F}:2: databases.bad name: invalid name`));
    expect(errorOf('databases:\n  app:\n    type: postgres\n    password_file: a\n    password_env: B\n')).toBe(`${F}:5: databases.app.password_env: give password_file or password_env, not both`);
    expect(errorOf('databases:\n  c:\n    type: command\n    command: []\n    filename: ../x\n')).toContain(`${F}:4: databases.c.command:`);
    expect(errorOf('databases:\n  p:\n    type: postgres\n    run_as: postgres\n    password_env: X\n')).toBe(`${F}:4: databases.p.run_as: run_as is for peer (socket) authentication: leave out password_file and password_env`);
    expect(errorOf('databases:\n  app: {type: postgres}\n  app: {type: mysql}\n')).toMatch(new RegExp(`^${F}:3: Map keys must be unique`));
  });

  it('several errors are one line, joined', () => {
    const m = errorOf('databases:\n  a:\n    type: postgres\n    port: x\n  b:\n    type: mysql\n    port: 0\n');
    expect(m.split('\n')).toHaveLength(1);
    expect(m).toContain(`${F}:4: databases.a.port: expected a number; ${F}:7: databases.b.port:`);
  });

  it('the cloud and instance_snapshots sections are validated by their own schemas', () => {
    expect(parseConfig('cloud: mycloud\n', F).cloud).toBe('mycloud');
    expect(errorOf('cloud:\n  name: x\n  interface: backstage\n')).toMatch(new RegExp(`^${F}:3: cloud.interface: `));
    expect(errorOf('instance_snapshots:\n  rotations:\n    daily: {rotation: -1}\n')).toMatch(new RegExp(`^${F}:3: instance_snapshots.rotations.daily.rotation: `));
  });

  it('which file: --config, else LIFEBOAT_CONFIG, else the default when it exists', () => {
    expect(configFileFor('/a.yaml', { LIFEBOAT_CONFIG: '/b.yaml' })).toBe('/a.yaml');
    expect(configFileFor(undefined, { LIFEBOAT_CONFIG: '/b.yaml' })).toBe('/b.yaml');
    expect(configFileFor(undefined, {})).toBe(fs.existsSync(F) ? F : null);
    const d = tmpDir();
    const f = path.join(d, 'c.yaml');
    fs.writeFileSync(f, 'databases:\n  x: {type: sqlite, path: a.db}\n');
    expect(loadConfigFile(f).config.databases.x).toMatchObject({ path: path.join(d, 'a.db') });
    expect(() => loadConfigFile(path.join(d, 'missing.yaml'))).toThrow(`cannot read config file ${path.join(d, 'missing.yaml')}: ENOENT`);
    fs.rmSync(d, { recursive: true });
  });
});

import { describe, expect, it } from 'vitest';
import { dumpFileName, restoredName } from '../../src/sources/types.js';
import { pgpassLine, quoteIdent, quoteLiteral } from '../../src/sources/postgres.js';
import { optionValue } from '../../src/sources/mysql.js';
import { findTool, ToolMissingError } from '../../src/sources/process.js';

describe('names and escaping for database sources', () => {
  it('a database name becomes one safe file name', () => {
    expect(dumpFileName('app', '.sql')).toBe('app.sql');
    expect(dumpFileName('a/b', '.sql')).toBe('a%2Fb.sql');
    expect(dumpFileName('50%', '.sql')).toBe('50%25.sql');
    expect(dumpFileName('..', '')).toBe('%2E%2E');
    expect(dumpFileName('.', '.sql')).toBe('%2E.sql');
  });

  it('restored copies are named DB_restored_YYYYMMDDHHMMSS and fit the server\'s limit', () => {
    expect(restoredName('app', '20261122221500')).toBe('app_restored_20261122221500');
    const long = restoredName('x'.repeat(80), '20261122221500', 63);
    expect(long).toHaveLength(63);
    expect(long.endsWith('_restored_20261122221500')).toBe(true);
  });

  it('.pgpass and option-file values are escaped', () => {
    expect(pgpassLine('a:b\\c')).toBe('*:*:*:*:a\\:b\\\\c\n');
    expect(optionValue('a"b\\c#d')).toBe('"a\\"b\\\\c#d"');
    expect(quoteIdent('we"ird')).toBe('"we""ird"');
    expect(quoteLiteral("o'neil")).toBe("'o''neil'");
  });

  it('a missing client tool names the Debian package', () => {
    expect(() => findTool(['pg_dump'], 'postgresql-client', { PATH: '/nonexistent' })).toThrow(ToolMissingError);
    expect(() => findTool(['mariadb-dump', 'mysqldump'], 'mariadb-client', { PATH: '' })).toThrow(
      'mariadb-dump or mysqldump not found in PATH: install the Debian package mariadb-client (apt-get install mariadb-client)',
    );
    expect(findTool(['sh'], 'dash', { PATH: '/nonexistent:/bin:/usr/bin' })).toMatch(/\/sh$/);
  });
});

describe('leftovers of a killed run', () => {
  it('old password files and SQLite copies are swept; fresh ones and other files stay', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const { tmpDir } = await import('../helpers/repo.js');
    const { sweepStale } = await import('../../src/sources/secret-file.js');
    const dir = tmpDir();
    const touch = (name: string, ageMs: number) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, 'x');
      const t = new Date(Date.now() - ageMs);
      fs.utimesSync(f, t, t);
    };
    touch('pgpass-0123456789abcdef', 2 * 3600_000);
    touch('my-cnf-0123456789abcdef', 2 * 3600_000);
    touch('pgpass-fedcba9876543210', 60_000);
    touch('sqlite-0123456789abcdef.db', 2 * 3600_000);
    touch('sqlite-fedcba9876543210.db', 2 * 86_400_000);
    touch('other', 10 * 86_400_000);
    sweepStale(dir);
    expect(fs.readdirSync(dir).sort()).toEqual(['other', 'pgpass-fedcba9876543210', 'sqlite-0123456789abcdef.db']);
    fs.rmSync(dir, { recursive: true });
  });
});

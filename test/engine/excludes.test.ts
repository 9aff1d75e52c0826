import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Excluder, compilePattern, parseSize } from '../../src/engine/excludes.js';
import { makeTempDir } from '../helpers/storage-backends.js';

const m = (pattern: string, p: string, ci = false) => compilePattern(pattern, ci).test(p);

describe('exclude patterns (restic semantics)', () => {
  it('a pattern without a slash matches any component, and everything below it', () => {
    expect(m('*.log', '/var/log/syslog.log')).toBe(true);
    expect(m('*.log', '/var/x.log/inner')).toBe(true);
    expect(m('*.log', '/var/log/syslog')).toBe(false);
    expect(m('node_modules', '/home/u/app/node_modules')).toBe(true);
    expect(m('node_modules', '/home/u/app/node_modules/x/y.js')).toBe(true);
    expect(m('node_modules', '/home/u/app/node_modules2')).toBe(false);
    expect(m('foo', '/a/foobar')).toBe(false);
  });

  it('* and ? never cross a slash; [...] classes; ** spans components', () => {
    expect(m('/home/*/cache', '/home/u/cache')).toBe(true);
    expect(m('/home/*/cache', '/home/u/v/cache')).toBe(false);
    expect(m('/home/**/cache', '/home/u/v/cache')).toBe(true);
    expect(m('/home/**/cache', '/home/cache')).toBe(true);
    expect(m('file?.txt', '/x/file1.txt')).toBe(true);
    expect(m('file?.txt', '/x/file12.txt')).toBe(false);
    expect(m('file[0-9].txt', '/x/file5.txt')).toBe(true);
    expect(m('file[!0-9].txt', '/x/file5.txt')).toBe(false);
    expect(m('file[!0-9].txt', '/x/filea.txt')).toBe(true);
    expect(m('a.b', '/x/aXb')).toBe(false);
  });

  it('a leading slash anchors at the root; relative multi-component patterns float', () => {
    expect(m('/tmp', '/tmp/x')).toBe(true);
    expect(m('/tmp', '/var/tmp')).toBe(false);
    expect(m('var/tmp', '/srv/var/tmp/x')).toBe(true);
    expect(m('var/tmp', '/srv/var/tmpx')).toBe(false);
  });

  it('--iexclude ignores case', () => {
    expect(m('*.JPG', '/p/a.jpg')).toBe(false);
    expect(m('*.JPG', '/p/a.jpg', true)).toBe(true);
  });

  it('sizes', () => {
    expect(parseSize('10M')).toBe(10 * 1024 * 1024);
    expect(parseSize('1G')).toBe(1024 ** 3);
    expect(parseSize('512k')).toBe(512 * 1024);
    expect(parseSize('100')).toBe(100);
    expect(() => parseSize('ten')).toThrow(/invalid size/);
  });

  it('exclude files, CACHEDIR.TAG and --exclude-larger-than', async () => {
    const dir = await makeTempDir();
    fs.writeFileSync(path.join(dir, 'ex'), '# comment\n\n  *.tmp  \n/abs/path\n');
    const e = new Excluder({ excludeFiles: [path.join(dir, 'ex')], excludeCaches: true, excludeLargerThan: 100 });
    expect(e.matchesPath('/x/y.tmp')).toBe(true);
    expect(e.matchesPath('/abs/path/z')).toBe(true);
    expect(e.matchesPath('/x/y.txt')).toBe(false);
    expect(e.tooLarge(101)).toBe(true);
    expect(e.tooLarge(100)).toBe(false);
    fs.mkdirSync(path.join(dir, 'c'));
    fs.writeFileSync(path.join(dir, 'c', 'CACHEDIR.TAG'), 'Signature: 8a477f597d28d172789f06886806bc55\n# a cache');
    fs.mkdirSync(path.join(dir, 'notc'));
    fs.writeFileSync(path.join(dir, 'notc', 'CACHEDIR.TAG'), 'Signature: wrong');
    expect(await e.isCacheDir(Buffer.from(path.join(dir, 'c')))).toBe(true);
    expect(await e.isCacheDir(Buffer.from(path.join(dir, 'notc')))).toBe(false);
    expect(await new Excluder({}).isCacheDir(Buffer.from(path.join(dir, 'c')))).toBe(false);
  });
});

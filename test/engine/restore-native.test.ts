import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { devSplit, getXattr, listXattrs, mkfifo, mknod, setXattr, utimesNs } from '../../src/native/index.js';
import { tmpDir } from '../helpers/repo.js';

describe('native helpers', () => {
  it('sets ns times on a file and on a symlink without following it', () => {
    const d = tmpDir();
    const f = path.join(d, 'f');
    fs.writeFileSync(f, 'x');
    utimesNs(f, 1_600_000_000_123_456_789n, 1_500_000_000_987_654_321n);
    let st = fs.lstatSync(f, { bigint: true });
    expect(st.mtimeNs).toBe(1_500_000_000_987_654_321n);
    expect(st.atimeNs).toBe(1_600_000_000_123_456_789n);
    const l = Buffer.from(path.join(d, 'link\xff'), 'latin1');
    fs.symlinkSync('f', l);
    utimesNs(l, 1n, -1_000_000_001n); // before 1970
    st = fs.lstatSync(l, { bigint: true });
    expect(st.mtimeNs).toBe(-1_000_000_001n);
    expect(fs.lstatSync(f, { bigint: true }).mtimeNs).toBe(1_500_000_000_987_654_321n);
  });

  it('lists, reads and writes xattrs with raw paths', () => {
    const d = tmpDir();
    const f = Buffer.concat([Buffer.from(d + '/'), Buffer.from([0x66, 0xfe, 0x80])]);
    fs.writeFileSync(f, 'x');
    expect(listXattrs(f)).toEqual([]);
    setXattr(f, 'user.one', Buffer.from([0, 1, 2]));
    setXattr(f, 'user.empty', Buffer.alloc(0));
    expect(listXattrs(f).sort()).toEqual(['user.empty', 'user.one']);
    expect(getXattr(f, 'user.one')).toEqual(Buffer.from([0, 1, 2]));
    expect(getXattr(f, 'user.empty').length).toBe(0);
    expect(() => getXattr(f, 'user.none')).toThrow(expect.objectContaining({ code: 'ENODATA' }));
    expect(() => listXattrs(path.join(d, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'llistxattr' }));
  });

  it('makes FIFOs and (as root) device nodes', () => {
    const d = tmpDir();
    mkfifo(path.join(d, 'p'), 0o640);
    const st = fs.lstatSync(path.join(d, 'p'));
    expect(st.isFIFO()).toBe(true);
    expect(st.mode & 0o777).toBe(0o640 & ~process.umask());
    if (process.getuid?.() === 0) {
      const null_ = fs.statSync('/dev/null');
      mknod(path.join(d, 'null'), null_.mode, null_.rdev);
      const s2 = fs.lstatSync(path.join(d, 'null'));
      expect(s2.isCharacterDevice()).toBe(true);
      expect(s2.rdev).toBe(null_.rdev);
      expect(devSplit(null_.rdev)).toEqual({ major: 1, minor: 3 });
    }
    expect(() => mkfifo(path.join(d, 'p'), 0o600)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
  });
});

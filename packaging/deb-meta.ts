/** Package metadata worked out from the staged tree: dependencies of the ELF files, installed size. */
import fs from 'node:fs';
import path from 'node:path';
import { run } from './run.js';

function walkFiles(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walkFiles(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

export function isElf(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    return fs.readSync(fd, b, 0, 4, 0) === 4 && b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    fs.closeSync(fd);
  }
}

export function elfFiles(root: string): string[] {
  return walkFiles(root).filter(isElf);
}

function cmpVersion(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

// the GCC release that first shipped each libstdc++ symbol version (Debian's libstdc++6 follows GCC's version)
const GLIBCXX_GCC: Record<string, string> = {
  '3.4.25': '8', '3.4.26': '9', '3.4.27': '10', '3.4.28': '10', '3.4.29': '11', '3.4.30': '12', '3.4.31': '13', '3.4.32': '13.2', '3.4.33': '14',
};

/** Depends: from the symbol versions the ELF files need (libc6, libstdc++6, libgcc-s1). */
export function elfDepends(files: string[]): string {
  let glibc = '2.17';
  let glibcxx: string | null = null;
  let gccS = false;
  for (const f of files) {
    const dyn = run('objdump', ['-T', '-p', f]);
    for (const m of dyn.matchAll(/GLIBC_(\d+(?:\.\d+)+)/g)) if (cmpVersion(m[1]!, glibc) > 0) glibc = m[1]!;
    for (const m of dyn.matchAll(/GLIBCXX_(\d+(?:\.\d+)+)/g)) if (!glibcxx || cmpVersion(m[1]!, glibcxx) > 0) glibcxx = m[1]!;
    if (/NEEDED\s+libgcc_s\.so/.test(dyn)) gccS = true;
  }
  const deps = [`libc6 (>= ${glibc})`];
  if (glibcxx) {
    const gcc = GLIBCXX_GCC[glibcxx];
    if (!gcc) throw new Error(`no libstdc++6 version known for GLIBCXX_${glibcxx}: add it to GLIBCXX_GCC`);
    deps.push(`libstdc++6 (>= ${gcc})`);
  }
  if (gccS) deps.push('libgcc-s1');
  return deps.join(', ');
}

/** Installed-Size in KiB, as dpkg-gencontrol counts it (files rounded up to 1 KiB, one per directory and link). */
export function installedSizeKiB(root: string): number {
  let kib = 0;
  const visit = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (dir === root && e.name === 'DEBIAN') continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        kib += 1;
        visit(p);
      } else if (e.isFile()) kib += Math.ceil(fs.statSync(p).size / 1024);
      else kib += 1;
    }
  };
  visit(root);
  return kib;
}

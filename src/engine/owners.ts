/**
 * uid/gid → user/group names, from /etc/passwd and /etc/group (read once per process, cached).
 * Names that are not listed stay undefined (the tree node then carries only the number).
 */
import fs from 'node:fs';

let users: Map<number, string> | null = null;
let groups: Map<number, string> | null = null;

function parse(file: string): Map<number, string> {
  const m = new Map<number, string>();
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return m;
  }
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    const id = Number(f[2]);
    if (f[0] && Number.isInteger(id) && !m.has(id)) m.set(id, f[0]);
  }
  return m;
}

export function userName(uid: number): string | undefined {
  users ??= parse('/etc/passwd');
  return users.get(uid);
}

export function groupName(gid: number): string | undefined {
  groups ??= parse('/etc/group');
  return groups.get(gid);
}

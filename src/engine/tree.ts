/**
 * Tree blobs (format §8): one canonical JSON document per directory. In memory, names and
 * symlink targets are raw bytes (file names on Linux need not be UTF-8) and times are bigint
 * nanoseconds; on disk they follow the format's encoding exactly, so an unchanged directory
 * encodes to the same bytes and the same blob id.
 */
import { rfc3339Nanos } from '../util/time.js';
import { IntegrityError } from '../repo/errors.js';
import { array, boolean, checkShape, integer, matching, object, oneOf, optional, ShapeError, string } from '../util/json-shape.js';

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'chardev' | 'blockdev' | 'socket';

export interface Xattr {
  name: string;
  value: Buffer;
}

export interface TreeNode {
  name: Buffer;
  type: NodeType;
  mode: number;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  mtimeNs: bigint;
  ctimeNs: bigint;
  atimeNs?: bigint;
  size?: number;
  inode?: number;
  device?: number;
  links?: number;
  rdev?: number;
  target?: Buffer;
  xattrs?: Xattr[];
  /** Blob ids (hex) of the file's chunks, in order. */
  content?: string[];
  /** Tree blob id (hex) of a directory. */
  subtree?: string;
  sparse?: boolean;
}

export interface Tree {
  nodes: TreeNode[];
}

const NODE_TYPES = ['file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev', 'socket'] as const;
const hexId = matching(/^[0-9a-f]{64}$/, 'expected a 64-digit hex id');
const b64 = matching(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');
const time = matching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/, 'expected an RFC 3339 UTC time');
const uint = integer(0);

const nodeSchema = object({
  name: optional(string),
  name_raw: optional(b64),
  type: oneOf(NODE_TYPES),
  mode: uint,
  uid: uint,
  gid: uint,
  user: optional(string),
  group: optional(string),
  mtime: time,
  ctime: time,
  atime: optional(time),
  size: optional(uint),
  inode: optional(uint),
  device: optional(uint),
  links: optional(uint),
  rdev: optional(uint),
  target: optional(string),
  target_raw: optional(b64),
  xattrs: optional(array(object({ name: string, value: b64 }))),
  content: optional(array(hexId)),
  subtree: optional(hexId),
  sparse: optional(boolean),
});
const treeSchema = object({ nodes: array(nodeSchema) });

/** True when the bytes are valid UTF-8 that round-trips exactly through a JS string. */
export function isUtf8(b: Buffer): boolean {
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}

/** Parses an RFC 3339 UTC time with up to 9 fractional digits into ns since the epoch. */
export function parseTimeNs(s: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(s);
  if (!m) throw new IntegrityError('tree blob', `invalid time ${JSON.stringify(s.slice(0, 40))}`);
  const secMs = Date.parse(`${m[1]}Z`);
  if (!Number.isFinite(secMs)) throw new IntegrityError('tree blob', `invalid time ${JSON.stringify(s.slice(0, 40))}`);
  const frac = BigInt((m[2] ?? '').padEnd(9, '0'));
  return BigInt(secMs) * 1_000_000n + frac;
}

/** Orders nodes by the bytes of their names, as the format requires. */
export function sortNodes(nodes: TreeNode[]): TreeNode[] {
  return nodes.sort((a, b) => Buffer.compare(a.name, b.name));
}

function encodeNode(n: TreeNode): Record<string, unknown> {
  // keys in the format's order; absent and empty values omitted
  const o: Record<string, unknown> = {};
  if (isUtf8(n.name)) o.name = n.name.toString('utf8');
  else o.name_raw = n.name.toString('base64');
  o.type = n.type;
  o.mode = n.mode;
  o.uid = n.uid;
  o.gid = n.gid;
  if (n.user) o.user = n.user;
  if (n.group) o.group = n.group;
  o.mtime = rfc3339Nanos(n.mtimeNs);
  o.ctime = rfc3339Nanos(n.ctimeNs);
  if (n.atimeNs !== undefined) o.atime = rfc3339Nanos(n.atimeNs);
  if (n.size !== undefined) o.size = n.size;
  if (n.inode !== undefined) o.inode = n.inode;
  if (n.device !== undefined) o.device = n.device;
  if (n.links !== undefined) o.links = n.links;
  if (n.rdev !== undefined) o.rdev = n.rdev;
  if (n.target !== undefined) {
    if (isUtf8(n.target)) o.target = n.target.toString('utf8');
    else o.target_raw = n.target.toString('base64');
  }
  if (n.xattrs && n.xattrs.length > 0) {
    o.xattrs = [...n.xattrs]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((x) => ({ name: x.name, value: x.value.toString('base64') }));
  }
  if (n.content !== undefined && (n.content.length > 0 || n.type === 'file')) o.content = n.content;
  if (n.subtree !== undefined) o.subtree = n.subtree;
  if (n.sparse) o.sparse = true;
  return o;
}

/** Canonical bytes of a tree: nodes sorted by name bytes, fixed key order, no whitespace. */
export function encodeTree(tree: Tree): Buffer {
  const nodes = sortNodes([...tree.nodes]);
  for (let i = 1; i < nodes.length; i++) {
    if (nodes[i - 1]!.name.equals(nodes[i]!.name)) {
      throw new Error(`duplicate name in tree: ${JSON.stringify(nodes[i]!.name.toString())}`);
    }
  }
  return Buffer.from(JSON.stringify({ nodes: nodes.map(encodeNode) }), 'utf8');
}

/**
 * Parses a tree blob's plaintext; throws an IntegrityError (object "tree blob") with the reason
 * when it is not a valid tree — never another error type, whatever the bytes.
 */
export function decodeTree(data: Buffer): Tree {
  let json: unknown;
  try {
    json = JSON.parse(data.toString('utf8'));
  } catch {
    throw new IntegrityError('tree blob', 'tree is not valid JSON');
  }
  let tree;
  try {
    tree = checkShape(treeSchema, json);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    throw new IntegrityError('tree blob', `malformed tree (${e.at || 'root'}: ${e.message})`);
  }
  return {
    nodes: tree.nodes.map((o) => {
      const name = o.name_raw !== undefined ? Buffer.from(o.name_raw, 'base64') : Buffer.from(o.name ?? '', 'utf8');
      if (name.length === 0) throw new IntegrityError('tree blob', 'malformed tree: a node without a name');
      const n: TreeNode = {
        name,
        type: o.type,
        mode: o.mode,
        uid: o.uid,
        gid: o.gid,
        mtimeNs: parseTimeNs(o.mtime),
        ctimeNs: parseTimeNs(o.ctime),
      };
      if (o.user !== undefined) n.user = o.user;
      if (o.group !== undefined) n.group = o.group;
      if (o.atime !== undefined) n.atimeNs = parseTimeNs(o.atime);
      if (o.size !== undefined) n.size = o.size;
      if (o.inode !== undefined) n.inode = o.inode;
      if (o.device !== undefined) n.device = o.device;
      if (o.links !== undefined) n.links = o.links;
      if (o.rdev !== undefined) n.rdev = o.rdev;
      if (o.target_raw !== undefined) n.target = Buffer.from(o.target_raw, 'base64');
      else if (o.target !== undefined) n.target = Buffer.from(o.target, 'utf8');
      if (o.xattrs !== undefined) n.xattrs = o.xattrs.map((x) => ({ name: x.name, value: Buffer.from(x.value, 'base64') }));
      if (o.content !== undefined) n.content = o.content;
      if (o.subtree !== undefined) n.subtree = o.subtree;
      if (o.sparse !== undefined) n.sparse = o.sparse;
      return n;
    }),
  };
}

/** A name for messages: UTF-8 when possible, else with invalid bytes escaped. */
export function displayName(name: Buffer): string {
  if (isUtf8(name)) return name.toString('utf8');
  let s = '';
  for (const byte of name) s += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  return s;
}

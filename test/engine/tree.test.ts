import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeTree, encodeTree, parseTimeNs, type TreeNode } from '../../src/engine/tree.js';
import { rfc3339Nanos } from '../../src/util/time.js';

const nodeArb: fc.Arbitrary<TreeNode> = fc.record({
  name: fc.uint8Array({ minLength: 1, maxLength: 12 }).map((a) => Buffer.from(a.map((b) => (b === 0 || b === 47 ? 65 : b)))),
  type: fc.constantFrom('file', 'dir', 'symlink', 'fifo'),
  mode: fc.integer({ min: 0, max: 0o177777 }),
  uid: fc.nat(70000),
  gid: fc.nat(70000),
  mtimeNs: fc.bigInt({ min: 0n, max: 4_000_000_000n * 1_000_000_000n }),
  ctimeNs: fc.bigInt({ min: 0n, max: 4_000_000_000n * 1_000_000_000n }),
  size: fc.nat(),
  target: fc.uint8Array({ minLength: 1, maxLength: 20 }).map((a) => Buffer.from(a)),
  xattrs: fc.uniqueArray(fc.record({ name: fc.stringMatching(/^user\.[a-z]{1,8}$/), value: fc.uint8Array({ maxLength: 30 }).map((a) => Buffer.from(a)) }), { selector: (x) => x.name, maxLength: 3 }),
  content: fc.array(fc.stringMatching(/^[0-9a-f]{64}$/), { maxLength: 3 }),
}, { requiredKeys: ['name', 'type', 'mode', 'uid', 'gid', 'mtimeNs', 'ctimeNs'] });

function uniqueByName(nodes: TreeNode[]): TreeNode[] {
  const seen = new Set<string>();
  return nodes.filter((n) => {
    const k = n.name.toString('hex');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

describe('tree encoding', () => {
  it('round-trips any nodes (raw names and targets, ns times, xattrs) and is canonical', () => {
    fc.assert(
      fc.property(fc.array(nodeArb, { maxLength: 8 }).map(uniqueByName), (nodes) => {
        const bytes = encodeTree({ nodes });
        const back = decodeTree(bytes);
        expect(encodeTree(back).equals(bytes)).toBe(true);
        expect(encodeTree({ nodes: [...nodes].reverse() }).equals(bytes)).toBe(true);
        const sorted = [...nodes].sort((a, b) => Buffer.compare(a.name, b.name));
        back.nodes.forEach((n, i) => {
          expect(n.name.equals(sorted[i]!.name)).toBe(true);
          expect(n.mtimeNs).toBe(sorted[i]!.mtimeNs);
          if (sorted[i]!.target) expect(n.target!.equals(sorted[i]!.target!)).toBe(true);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('stores non-UTF-8 names as name_raw and keeps nanoseconds', () => {
    const node: TreeNode = { name: Buffer.from([0x66, 0xff, 0x6f]), type: 'file', mode: 0o100644, uid: 0, gid: 0, mtimeNs: 1_700_000_000_123_456_789n, ctimeNs: 5n, content: [] };
    const json = JSON.parse(encodeTree({ nodes: [node] }).toString()) as { nodes: Array<Record<string, unknown>> };
    expect(json.nodes[0]).toMatchObject({ name_raw: 'Zv9v', mtime: '2023-11-14T22:13:20.123456789Z', ctime: '1970-01-01T00:00:00.000000005Z', content: [] });
    expect(json.nodes[0]!.name).toBeUndefined();
    expect(parseTimeNs(rfc3339Nanos(-1n))).toBe(-1n);
  });

  it('refuses malformed trees and duplicate names', () => {
    expect(() => decodeTree(Buffer.from('{"nodes":[{"type":"file"}]}'))).toThrow(/malformed tree/);
    expect(() => decodeTree(Buffer.from('nope'))).toThrow(/not valid JSON/);
    const n: TreeNode = { name: Buffer.from('a'), type: 'dir', mode: 0o40755, uid: 0, gid: 0, mtimeNs: 0n, ctimeNs: 0n };
    expect(() => encodeTree({ nodes: [n, { ...n }] })).toThrow(/duplicate name/);
  });
});

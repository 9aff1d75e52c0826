import { describe, expect, it } from 'vitest';
import { array, checkShape, integer, matching, object, oneOf, optional, record, ShapeError, string, withDefault } from '../../src/util/json-shape.js';
import { snapshotSchema } from '../../src/repo/formats.js';

const node = object({ name: string, size: optional(integer(0)), kind: oneOf(['a', 'b'] as const), ids: withDefault(array(matching(/^x+$/, 'expected x')), () => []) });

function errorOf(f: () => unknown): ShapeError {
  try {
    f();
  } catch (e) {
    if (e instanceof ShapeError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('json-shape', () => {
  it('keeps known keys, drops unknown ones, leaves absent optional keys absent, fills defaults', () => {
    const v = checkShape(node, { name: 'n', kind: 'a', extra: 1 });
    expect(v).toEqual({ name: 'n', kind: 'a', ids: [] });
    expect(Object.hasOwn(v, 'size')).toBe(false);
    expect(checkShape(node, { name: 'n', kind: 'b', size: 3, ids: ['xx'] })).toEqual({ name: 'n', kind: 'b', size: 3, ids: ['xx'] });
  });

  it('names the path of the first bad value', () => {
    const list = object({ nodes: array(node) });
    expect(errorOf(() => checkShape(list, { nodes: [{ name: 'a', kind: 'a' }, { name: 'b', kind: 'c' }] })).at).toBe('nodes.1.kind');
    expect(errorOf(() => checkShape(list, { nodes: [{ name: 'a', kind: 'a', ids: ['y'] }] })).message).toBe('expected x');
    expect(errorOf(() => checkShape(list, null)).message).toBe('expected an object, got null');
    expect(errorOf(() => checkShape(list, [])).message).toBe('expected an object, got an array');
  });

  it('integers: safe integers within bounds only', () => {
    const c = integer(0, 10);
    expect(checkShape(c, 10)).toBe(10);
    for (const bad of [-1, 11, 1.5, NaN, Infinity, 2 ** 60, '3', null]) expect(() => checkShape(c, bad)).toThrow(ShapeError);
    expect(() => checkShape(integer(), 2 ** 53)).toThrow(ShapeError);
  });

  it('a "__proto__" key never changes a prototype (passthrough and records)', () => {
    const json = JSON.parse('{"version":1,"time":"t","tree":"' + 'a'.repeat(64) + '","paths":[],"hostname":"h","source":{"type":"files","__proto__":{"polluted":1}},"__proto__":{"polluted":2},"summary":{"__proto__":{"polluted":3}}}') as unknown;
    const snap = checkShape(snapshotSchema, json);
    expect(Object.getPrototypeOf(snap)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(snap.source)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((snap as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(snap, '__proto__')).toBe(true);
    expect(snap.tags).toEqual([]);
    const r = checkShape(record(integer()), JSON.parse('{"__proto__":5,"a":1}'));
    expect(Object.getPrototypeOf(r)).toBe(Object.prototype);
    expect(Object.keys(r).sort()).toEqual(['__proto__', 'a']);
  });
});

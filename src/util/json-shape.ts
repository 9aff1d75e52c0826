/**
 * Checking the shape of parsed JSON (repository objects: config, key files, index files,
 * snapshots, locks, trees) with typed results. The repository layer used zod for this; zod's
 * import alone costs 110–300 ms of CPU, paid by every command before it does anything, while
 * these few fixed shapes need a page of code (the config file, parsed only when there is one,
 * still uses zod).
 *
 * Semantics follow what the zod schemas did: objects must be plain objects, unknown keys are
 * dropped (kept by `passthrough`), an absent optional key stays absent, integers are safe
 * integers. A mismatch throws ShapeError with the path of the first bad value.
 */

export class ShapeError extends Error {
  constructor(readonly at: string, message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

export type Check<T> = (v: unknown, at: string) => T;
export type Infer<C> = C extends Check<infer T> ? T : never;

function fail(at: string, message: string): never {
  throw new ShapeError(at, message);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : typeof v;
}

export const string: Check<string> = (v, at) => (typeof v === 'string' ? v : fail(at, `expected a string, got ${describe(v)}`));

export const boolean: Check<boolean> = (v, at) => (typeof v === 'boolean' ? v : fail(at, `expected a boolean, got ${describe(v)}`));

export function matching(re: RegExp, message: string): Check<string> {
  return (v, at) => (re.test(string(v, at)) ? (v as string) : fail(at, message));
}

/** A safe integer in [min, max]. */
export function integer(min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): Check<number> {
  return (v, at) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) return fail(at, `expected an integer, got ${describe(v)}`);
    if (v < min) return fail(at, `expected an integer >= ${min}`);
    if (v > max) return fail(at, `expected an integer <= ${max}`);
    return v;
  };
}

export function literal<T extends string>(x: T): Check<T> {
  return (v, at) => (v === x ? x : fail(at, `expected "${x}"`));
}

export function oneOf<T extends string>(values: readonly T[]): Check<T> {
  return (v, at) => ((values as readonly unknown[]).includes(v) ? (v as T) : fail(at, `expected one of ${values.join(', ')}`));
}

export function array<T>(item: Check<T>, min = 0): Check<T[]> {
  return (v, at) => {
    if (!Array.isArray(v)) return fail(at, `expected an array, got ${describe(v)}`);
    if (v.length < min) return fail(at, `expected at least ${min} item(s)`);
    const out = new Array<T>(v.length);
    for (let i = 0; i < v.length; i++) out[i] = item(v[i], at === '' ? String(i) : `${at}.${i}`);
    return out;
  };
}

/** Absent (undefined) or valid; in an object, an absent key stays absent. */
export function optional<T>(c: Check<T>): Check<T | undefined> {
  return (v, at) => (v === undefined ? undefined : c(v, at));
}

/** Absent: the default. */
export function withDefault<T>(c: Check<T>, make: () => T): Check<T> {
  return (v, at) => (v === undefined ? make() : c(v, at));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An object whose every value passes `c`. */
export function record<T>(c: Check<T>): Check<Record<string, T>> {
  return (v, at) => {
    if (!isPlainObject(v)) return fail(at, `expected an object, got ${describe(v)}`);
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(v)) define(out, k, c(x, at === '' ? k : `${at}.${k}`));
    return out;
  };
}

type Shape = Record<string, Check<unknown>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: undefined extends Infer<S[K]> ? K : never }[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOf<S extends Shape> = Simplify<
  { [K in RequiredKeys<S>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Exclude<Infer<S[K]>, undefined> }
>;

/**
 * An own data property, even for the key "__proto__" (JSON.parse makes it an own key too; plain
 * assignment would set the prototype instead). Other keys are assigned: defineProperty is slow.
 */
function define(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

export function object<S extends Shape>(shape: S, opts: { passthrough?: boolean } = {}): Check<ObjectOf<S>> {
  const keys = Object.keys(shape);
  return (v, at) => {
    if (!isPlainObject(v)) return fail(at, `expected an object, got ${describe(v)}`);
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const x = shape[k]!(Object.hasOwn(v, k) ? v[k] : undefined, at === '' ? k : `${at}.${k}`);
      if (x !== undefined) define(out, k, x);
    }
    if (opts.passthrough) for (const k of Object.keys(v)) if (!Object.hasOwn(shape, k)) define(out, k, v[k]);
    return out as ObjectOf<S>;
  };
}

/** Runs a check on a whole document: the value, or a ShapeError. */
export function checkShape<T>(c: Check<T>, v: unknown): T {
  return c(v, '');
}

/**
 * Reading the config file: YAML (the `yaml` package, with a LineCounter so every error can name its
 * line), validated by the zod schema. Every problem becomes one ConfigError line of the form
 * `FILE:LINE: FIELD: reason`, several joined by "; ".
 */
import fs from 'node:fs';
import path from 'node:path';
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { configSchema, type LifeboatConfig } from './schema.js';
import { ConfigError, didYouMean } from './errors.js';
import { recordSecretOrigin } from './secrets.js';

import { configFileFor } from './locate.js';

export { configFileFor, DEFAULT_CONFIG_FILE } from './locate.js';

export interface LoadedConfig {
  file: string;
  config: LifeboatConfig;
}

export function loadConfigFile(file: string): LoadedConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return { file, config: parseConfig(text, file) };
}

/** Parses and validates config text; `file` names it in errors and anchors relative paths. */
export function parseConfig(text: string, file: string): LifeboatConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => `${file}:${lineCounter.linePos(e.pos[0]).line}: ${firstLine(e.message)}`).join('; '),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${file}:1: the config must be a mapping of sections`);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.flatMap((iss) => describeIssue(iss, doc, lineCounter, file));
    throw new ConfigError(lines.join('; '));
  }
  const config = resolvePaths(parsed.data, path.dirname(file));
  // where each secret file is named, for messages about the file itself (missing, too open)
  if (config.password_file) recordSecretOrigin(config, { file, line: lineOf(doc, lineCounter, ['password_file'], false), field: 'password_file' });
  for (const [name, e] of Object.entries(config.databases)) {
    if ('password_file' in e && e.password_file) {
      recordSecretOrigin(e, { file, line: lineOf(doc, lineCounter, ['databases', name, 'password_file'], false), field: `databases.${name}.password_file` });
    }
  }
  return config;
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

type Issue = z.core.$ZodIssue;

function describeIssue(iss: Issue, doc: Document, lc: LineCounter, file: string): string[] {
  const p = iss.path.map((k) => (typeof k === 'symbol' ? String(k) : k));
  const at = (keys: Array<string | number>, keyNode = false) => `${file}:${lineOf(doc, lc, keys, keyNode)}`;
  const field = (keys: Array<string | number>) => (keys.length ? keys.join('.') : '(top level)');
  switch (iss.code) {
    case 'unrecognized_keys':
      return iss.keys.map((k) => {
        const hint = didYouMean(k, keysAt(configSchema, p));
        return `${at([...p, k], true)}: ${field([...p, k])}: unknown key${hint ? ` (did you mean ${hint}?)` : p.length === 0 ? ' (a misspelt section?)' : ''}`;
      });
    case 'invalid_type': {
      if (!has(doc, p)) return [`${at(p)}: ${field(p)}: required`];
      return [`${at(p)}: ${field(p)}: expected ${article(iss.expected)}`];
    }
    case 'invalid_union':
      if ((iss as { note?: string }).note === 'No matching discriminator') {
        const tp = p[p.length - 1] === 'type' ? p : [...p, 'type'];
        return [`${at(tp)}: ${field(tp)}: ${has(doc, tp) ? 'must be one of postgres, mysql, sqlite, command' : 'required (postgres, mysql, sqlite or command)'}`];
      }
      {
        // the alternative that got furthest (a mapping with a bad field rather than "not a string")
        const branches = (iss.errors ?? []).filter((b) => b.length > 0 && !(b.length === 1 && b[0]!.code === 'invalid_type' && b[0]!.path.length === 0));
        const depth = (b: Issue[]) => Math.max(...b.map((i) => i.path.length));
        const best = branches.sort((a, b) => depth(b) - depth(a))[0];
        if (best && depth(best) > 0) return best.flatMap((sub) => describeIssue({ ...sub, path: [...iss.path, ...sub.path] } as Issue, doc, lc, file));
      }
      return [`${at(p)}: ${field(p)}: ${iss.message}`];
    case 'invalid_key':
      return [`${at(p, true)}: ${field(p)}: invalid name (${iss.issues[0]?.message ?? iss.message})`];
    case 'invalid_value':
      return [`${at(p)}: ${field(p)}: expected ${iss.values.map((v) => JSON.stringify(v)).join(' or ')}`];
    default:
      return [`${at(p)}: ${field(p)}: ${iss.message}`];
  }
}

/** The keys the schema accepts for an object at `p` (every union alternative's, any record key). */
export function keysAt(schema: z.ZodType, p: Array<string | number>): string[] {
  const out = new Set<string>();
  const visit = (s: unknown, rest: Array<string | number>, depth: number): void => {
    if (!s || depth > 40) return;
    const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return;
    switch (def.type) {
      case 'object': {
        const shape = def.shape as Record<string, unknown>;
        if (rest.length === 0) for (const k of Object.keys(shape)) out.add(k);
        else visit(shape[String(rest[0])], rest.slice(1), depth + 1);
        return;
      }
      case 'record':
        if (rest.length > 0) visit(def.valueType, rest.slice(1), depth + 1);
        return;
      case 'array':
        if (rest.length > 0) visit(def.element, rest.slice(1), depth + 1);
        return;
      case 'union':
        for (const o of def.options as unknown[]) visit(o, rest, depth + 1);
        return;
      case 'pipe':
        visit(def.in, rest, depth + 1);
        return;
      default:
        // optional, nullable, default, prefault, readonly, catch, ...: one inner type
        visit(def.innerType, rest, depth + 1);
    }
  };
  visit(schema, p, 0);
  return [...out];
}

function article(t: string): string {
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

function has(doc: Document, keys: Array<string | number>): boolean {
  return doc.getIn(keys, true) !== undefined;
}

/** The 1-based line of the value (or the key) at `keys`, or of its nearest existing ancestor. */
function lineOf(doc: Document, lc: LineCounter, keys: Array<string | number>, keyNode: boolean): number {
  for (let n = keys.length; n >= 0; n--) {
    const parentKeys = keys.slice(0, Math.max(0, n - 1));
    if (n > 0 && (keyNode || n < keys.length || doc.getIn(keys.slice(0, n), true) === undefined)) {
      // the key itself, when the map holds it
      const parent = parentKeys.length ? doc.getIn(parentKeys, true) : doc.contents;
      if (isMap(parent)) {
        const pair = parent.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(keys[n - 1]));
        const k = pair?.key as Node | undefined;
        if (k?.range) return lc.linePos(k.range[0]).line;
      }
    }
    const node = (n === 0 ? doc.contents : doc.getIn(keys.slice(0, n), true)) as Node | undefined | null;
    if (node && typeof node === 'object' && node.range) return lc.linePos(node.range[0]).line;
  }
  return 1;
}

/** Paths in the config are relative to the config file's directory. */
function resolvePaths(c: LifeboatConfig, dir: string): LifeboatConfig {
  const abs = (p: string) => path.resolve(dir, p);
  if (c.password_file) c.password_file = abs(c.password_file);
  if (c.cache_dir) c.cache_dir = abs(c.cache_dir);
  if (c.repository && !/^[a-z0-9]+:/i.test(c.repository)) c.repository = abs(c.repository);
  if (c.agent.state_dir) c.agent.state_dir = abs(c.agent.state_dir);
  if (c.agent.socket) c.agent.socket = abs(c.agent.socket);
  for (const b of Object.values(c.backups)) b.exclude_file = b.exclude_file.map(abs);
  for (const e of Object.values(c.databases)) {
    if ('password_file' in e && e.password_file) e.password_file = abs(e.password_file);
    if (e.type === 'sqlite') e.path = abs(e.path);
  }
  return c;
}

/** The config that applies to this run (see configFileFor), or null when there is none. */
export function loadConfigFor(flag: string | undefined, env = process.env): LoadedConfig | null {
  const file = configFileFor(flag, env);
  // the agent hands its jobs the text it validated, so an edit takes effect only once reloaded (SIGHUP)
  if (file && env.LIFEBOAT_AGENT_CONFIG_TEXT !== undefined && env.LIFEBOAT_CONFIG === file) return { file, config: parseConfig(env.LIFEBOAT_AGENT_CONFIG_TEXT, file) };
  return file ? loadConfigFile(file) : null;
}

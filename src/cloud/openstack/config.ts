/**
 * OpenStack client configuration as openstacksdk / the `openstack` client read it: clouds.yaml and
 * secure.yaml in the standard places, OS_CLOUD, OS_* variables (the `envvars` cloud), plus
 * lifeboat's `cloud:` config section naming a clouds.yaml entry (with overrides).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { CloudError, registerSecret } from '../errors.js';
import type { CloudSection } from '../../config/cloud.js';

/** The YAML parser, loaded (synchronously, its CommonJS build) only when a clouds.yaml is read. */
function parseYaml(text: string): unknown {
  const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yaml.parse(text);
}

export type AuthSpec =
  | {
      type: 'password';
      user: { id?: string; name?: string; domain?: { id?: string; name?: string } };
      password: string;
      /** undefined ⇒ unscoped token (no catalog): an error for lifeboat */
      project?: { id?: string; name?: string; domain?: { id?: string; name?: string } };
    }
  | {
      type: 'application_credential';
      id?: string;
      name?: string;
      secret: string;
      user?: { id?: string; name?: string; domain?: { id?: string; name?: string } };
    };

export interface ResolvedCloud {
  /** the clouds.yaml entry's name, or "envvars" */
  name: string;
  /** where it came from: a file path or "environment" */
  source: string;
  authUrl: string;
  auth: AuthSpec;
  region?: string;
  interface: 'public' | 'internal' | 'admin';
  ca?: Buffer;
  insecure: boolean;
  /** explicit server id (lifeboat config), skipping discovery */
  serverId?: string;
}

type Dict = Record<string, unknown>;

const isDict = (v: unknown): v is Dict => !!v && typeof v === 'object' && !Array.isArray(v);

function deepMerge(a: Dict, b: Dict): Dict {
  const out: Dict = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isDict(v) && isDict(out[k]) ? deepMerge(out[k] as Dict, v) : v;
  return out;
}

/** Keys that belong inside `auth:` when they appear at the top of a cloud or as OS_* variables. */
const AUTH_KEYS = new Set([
  'auth_url', 'username', 'user_id', 'password', 'project_id', 'project_name', 'tenant_id', 'tenant_name',
  'user_domain_id', 'user_domain_name', 'project_domain_id', 'project_domain_name', 'domain_id', 'domain_name',
  'application_credential_id', 'application_credential_secret', 'application_credential_name', 'token',
]);

/** Variables that select a cloud but do not create the `envvars` cloud. */
const SELECTOR_VARS = new Set(['OS_CLOUD', 'OS_REGION_NAME', 'OS_CLIENT_CONFIG_FILE', 'OS_CLIENT_SECURE_FILE', 'OS_CLOUD_NAME']);

export interface ConfigEnv {
  env: NodeJS.ProcessEnv;
  cwd: string;
  home: string;
}

export function defaultConfigEnv(): ConfigEnv {
  return { env: process.env, cwd: process.cwd(), home: process.env.HOME || os.homedir() };
}

function candidateFiles(base: 'clouds' | 'secure', ce: ConfigEnv): string[] {
  const dirs = [ce.cwd, path.join(ce.home, '.config', 'openstack'), '/etc/openstack'];
  const files: string[] = [];
  const explicit = base === 'clouds' ? ce.env.OS_CLIENT_CONFIG_FILE : ce.env.OS_CLIENT_SECURE_FILE;
  if (explicit) files.push(explicit);
  for (const d of dirs) for (const ext of ['yaml', 'yml', 'json']) files.push(path.join(d, `${base}.${ext}`));
  return files;
}

function readYamlFile(file: string): Dict {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CloudError('config', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new CloudError('config', `${file}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (!isDict(doc)) throw new CloudError('config', `${file}: expected a mapping with "clouds:"`);
  return doc;
}

function firstExisting(files: string[]): string | undefined {
  return files.find((f) => {
    try {
      return fs.statSync(f).isFile();
    } catch {
      return false;
    }
  });
}

/** OS_FOO_BAR=… ⇒ {foo_bar: …}; null when no variable would create the `envvars` cloud. */
export function envCloud(env: NodeJS.ProcessEnv): Dict | null {
  const out: Dict = {};
  let any = false;
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith('OS_') || v === undefined || v === '') continue;
    if (!SELECTOR_VARS.has(k)) any = true;
    out[k.slice(3).toLowerCase()] = v;
  }
  return any ? out : null;
}

/** Parses `export OS_X="value"` lines of an openrc file without running it (Horizon's prompts for the password). */
export function parseOpenrc(text: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const raw of text.split('\n')) {
    const m = /^\s*(?:export\s+)?(OS_[A-Z0-9_]+)=(.*)$/.exec(raw);
    if (!m) continue;
    let v = m[2]!.trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    if (v.includes('$')) continue; // "$OS_PASSWORD_INPUT" and other shell expansions: not a value
    env[m[1]!] = v;
  }
  return env;
}

/** Moves auth keys to `auth:`, maps legacy names, fills domains (openstacksdk's _fix_args, _handle_domain_id). */
function normalize(cloud: Dict): Dict {
  const c: Dict = { ...cloud };
  const auth: Dict = isDict(c.auth) ? { ...c.auth } : {};
  for (const k of Object.keys(c)) {
    if (AUTH_KEYS.has(k)) {
      if (auth[k] === undefined) auth[k] = c[k];
      delete c[k];
    }
  }
  for (const [from, to] of [['tenant_id', 'project_id'], ['tenant_name', 'project_name']] as const) {
    if (auth[from] !== undefined && auth[to] === undefined) auth[to] = auth[from];
    delete auth[from];
  }
  for (const d of ['id', 'name'] as const) {
    const v = auth[`domain_${d}`];
    if (v !== undefined) {
      if (auth[`user_domain_${d}`] === undefined) auth[`user_domain_${d}`] = v;
      if (auth[`project_domain_${d}`] === undefined) auth[`project_domain_${d}`] = v;
      delete auth[`domain_${d}`];
    }
  }
  c.auth = auth;
  if (c.interface === undefined && c.endpoint_type !== undefined) c.interface = c.endpoint_type;
  return c;
}

const str = (v: unknown): string | undefined => (v === undefined || v === null || v === '' ? undefined : String(v));

function domainOf(auth: Dict, which: 'user' | 'project'): { id?: string; name?: string } | undefined {
  const id = str(auth[`${which}_domain_id`]);
  const name = str(auth[`${which}_domain_name`]);
  if (!id && !name) return undefined;
  return id ? { id } : { name: name! };
}

function normInterface(v: unknown, where: string): 'public' | 'internal' | 'admin' {
  const s = (str(v) ?? 'public').replace(/URL$/, '').toLowerCase();
  if (s === 'public' || s === 'internal' || s === 'admin') return s;
  throw new CloudError('config', `${where}: interface must be public, internal or admin (not "${String(v)}")`);
}

function toResolved(name: string, source: string, raw: Dict, section: Exclude<CloudSection, string> | undefined, env: NodeJS.ProcessEnv): ResolvedCloud {
  const c = normalize(raw);
  const where = `openstack cloud "${name}" (${source})`;
  const auth = c.auth as Dict;
  const authUrl = str(auth.auth_url);
  if (!authUrl) throw new CloudError('config', `${where}: no auth_url`);
  const idv = str(c.identity_api_version);
  if (idv && !/^3(\.\d+)?$/.test(idv)) throw new CloudError('config', `${where}: identity_api_version ${idv} is not supported (Keystone v3 only)`);
  const authType = (str(c.auth_type) ?? (auth.application_credential_secret !== undefined ? 'v3applicationcredential' : 'password')).toLowerCase();
  let spec: AuthSpec;
  if (authType === 'password' || authType === 'v3password') {
    const password = str(auth.password);
    if (!password) throw new CloudError('config', `${where}: no password (put it in secure.yaml or OS_PASSWORD)`);
    const userId = str(auth.user_id);
    const username = str(auth.username);
    if (!userId && !username) throw new CloudError('config', `${where}: no username or user_id`);
    const userDomain = domainOf(auth, 'user');
    if (!userId && !userDomain) throw new CloudError('config', `${where}: username needs user_domain_name or user_domain_id`);
    const projectId = str(auth.project_id);
    const projectName = str(auth.project_name);
    const projectDomain = domainOf(auth, 'project');
    if (!projectId && !projectName) throw new CloudError('config', `${where}: no project_id or project_name (a project-scoped token is needed)`);
    if (!projectId && !projectDomain) throw new CloudError('config', `${where}: project_name needs project_domain_name or project_domain_id`);
    registerSecret(password);
    spec = {
      type: 'password',
      user: userId ? { id: userId } : { name: username!, domain: userDomain! },
      password,
      project: projectId ? { id: projectId } : { name: projectName!, domain: projectDomain! },
    };
  } else if (authType === 'v3applicationcredential' || authType === 'applicationcredential' || authType === 'application_credential') {
    const secret = str(auth.application_credential_secret);
    if (!secret) throw new CloudError('config', `${where}: no application_credential_secret`);
    const id = str(auth.application_credential_id);
    const credName = str(auth.application_credential_name);
    if (!id && !credName) throw new CloudError('config', `${where}: no application_credential_id or application_credential_name`);
    registerSecret(secret);
    let user: { id?: string; name?: string; domain?: { id?: string; name?: string } } | undefined;
    if (!id) {
      const userId = str(auth.user_id);
      const username = str(auth.username);
      if (!userId && !username) throw new CloudError('config', `${where}: application_credential_name needs username or user_id`);
      const dom = domainOf(auth, 'user');
      if (!userId && !dom) throw new CloudError('config', `${where}: username needs user_domain_name or user_domain_id`);
      user = userId ? { id: userId } : { name: username!, domain: dom! };
    }
    spec = { type: 'application_credential', ...(id ? { id } : { name: credName! }), secret, ...(user ? { user } : {}) };
  } else {
    throw new CloudError('config', `${where}: auth_type "${authType}" is not supported (use password or v3applicationcredential)`);
  }
  let region = section?.region ?? str(env.OS_REGION_NAME) ?? str(c.region_name);
  if (!region && Array.isArray(c.regions) && c.regions.length > 0) {
    const r0 = c.regions[0] as unknown;
    region = isDict(r0) ? str(r0.name) : str(r0);
  }
  let ca: Buffer | undefined;
  const cacert = str(c.cacert);
  if (cacert) {
    try {
      ca = fs.readFileSync(cacert);
    } catch (e) {
      throw new CloudError('config', `${where}: cannot read cacert ${cacert}: ${(e as NodeJS.ErrnoException).code}`);
    }
  }
  const verify = c.verify;
  const insecure = verify === false || verify === 'false' || c.insecure === true || c.insecure === 'true';
  return {
    name,
    source,
    authUrl,
    auth: spec,
    ...(region ? { region } : {}),
    interface: normInterface(section?.interface ?? c.interface, where),
    ...(ca ? { ca } : {}),
    insecure,
    ...(section?.server_id ? { serverId: section.server_id } : {}),
  };
}

/** Resolves which cloud to use and its credentials. Throws CloudError('config') with a one-line reason. */
export function resolveCloud(section: CloudSection | undefined, ce: ConfigEnv = defaultConfigEnv()): ResolvedCloud {
  const sec = typeof section === 'string' ? { name: section } : section;
  let env = ce.env;
  if (sec?.openrc) {
    let text: string;
    try {
      text = fs.readFileSync(sec.openrc, 'utf8');
    } catch (e) {
      throw new CloudError('config', `cannot read openrc file ${sec.openrc}: ${(e as NodeJS.ErrnoException).code}`);
    }
    const fromFile = parseOpenrc(text);
    const cloud = envCloud(fromFile);
    if (!cloud) throw new CloudError('config', `openrc file ${sec.openrc} sets no OS_* variables`);
    return toResolved('openrc', sec.openrc, cloud, sec, { ...fromFile, OS_REGION_NAME: fromFile.OS_REGION_NAME });
  }
  const cloudsFile = sec?.clouds_file ?? firstExisting(candidateFiles('clouds', ce));
  if (sec?.clouds_file && !fs.existsSync(sec.clouds_file)) throw new CloudError('config', `clouds file ${sec.clouds_file} does not exist`);
  let clouds: Dict = {};
  if (cloudsFile) {
    const doc = readYamlFile(cloudsFile);
    clouds = isDict(doc.clouds) ? doc.clouds : {};
    const secureFile = firstExisting(candidateFiles('secure', ce));
    if (secureFile) {
      const sdoc = readYamlFile(secureFile);
      if (isDict(sdoc.clouds)) clouds = deepMerge(clouds, sdoc.clouds);
    }
  }
  const wanted = sec?.name ?? str(env.OS_CLOUD);
  if (wanted) {
    const c = clouds[wanted];
    if (!isDict(c)) {
      const names = Object.keys(clouds);
      const where = cloudsFile ?? 'no clouds.yaml found (./, ~/.config/openstack/, /etc/openstack/)';
      throw new CloudError('config', `openstack cloud "${wanted}" not found in ${where}${names.length ? ` (it has: ${names.join(', ')})` : ''}`);
    }
    return toResolved(wanted, cloudsFile!, c, sec, env);
  }
  const fromEnv = envCloud(env);
  if (fromEnv) return toResolved(str(env.OS_CLOUD_NAME) ?? 'envvars', 'environment', fromEnv, sec, env);
  const names = Object.keys(clouds);
  if (names.length === 1) return toResolved(names[0]!, cloudsFile!, clouds[names[0]!] as Dict, sec, env);
  if (names.length > 1) {
    throw new CloudError('config', `${cloudsFile} has several clouds (${names.join(', ')}): choose one with OS_CLOUD or cloud: in lifeboat's config`);
  }
  throw new CloudError('config', 'no OpenStack cloud configured: no clouds.yaml (./, ~/.config/openstack/, /etc/openstack/), no OS_CLOUD, no OS_* variables, no cloud: section');
}

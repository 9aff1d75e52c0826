/**
 * The S3 server for the benchmark: the project's test-services Swift (test/services/s3.sh), the
 * plain flavour (Swift 2.30 s3api as OpenStack clouds run it, the tests' default), in a data
 * directory of its own. Started when it is not running; stopped (and its data removed) at the end
 * only if this run started it. Or, with an explicit endpoint, whatever server is there (AWS_* from
 * the env). Also: a self-signed certificate for the benchmark's https proxy in front of it.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { parseExports } from '../test/services/exports.js';
import { DeleteBucketCommand, S3Client } from '@aws-sdk/client-s3';

import { S3Storage } from '../src/storage/s3.js';

const run = promisify(execFile);

export interface S3Service {
  endpoint: string;
  /** AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION for the tools */
  env: Record<string, string>;
  startedHere: boolean;
  /** pids of the Swift servers (for their CPU time), empty when unknown */
  pids: number[];
  dir: string | null;
  stop(): Promise<void>;
}

async function script(root: string, dir: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run('bash', [path.join(root, 'test', 'services', 's3.sh'), ...args], {
      env: { ...process.env, SWIFT_S3_DIR: dir, SWIFT_S3_COMPAT: '0' },
      timeout: 600_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr ?? '';
    throw new Error(`test/services/s3.sh ${args.join(' ')} (SWIFT_S3_DIR=${dir}) failed:\n${stderr.trim()}`, { cause: e });
  }
}

function swiftPids(dir: string): number[] {
  const runDir = path.join(dir, 'run');
  try {
    return fs
      .readdirSync(runDir)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => Number(fs.readFileSync(path.join(runDir, f), 'utf8').trim()))
      .filter((p) => p > 0);
  } catch {
    return [];
  }
}

/** user + sys CPU seconds of the given processes (and their reaped children), 0 for gone ones. */
export function cpuOf(pids: number[]): number {
  const tick = 100; // USER_HZ on Linux
  let s = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields after "(comm) ": state=0 … utime=11 stime=12 cutime=13 cstime=14
      s += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / tick;
    } catch {
      /* gone */
    }
  }
  return s;
}

export async function startS3(root: string, dir: string, endpoint?: string): Promise<S3Service> {
  if (endpoint) {
    const env: Record<string, string> = {};
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION']) {
      const v = process.env[k];
      if (v) env[k] = v;
    }
    if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) throw new Error('--s3-endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment');
    return { endpoint, env, startedHere: false, pids: [], dir: null, stop: async () => {} };
  }
  let startedHere = false;
  let out: string;
  try {
    await script(root, dir, ['status']);
    out = await script(root, dir, ['env']);
  } catch {
    out = await script(root, dir, ['start']);
    startedHere = true;
  }
  const e = parseExports(out);
  if (!e.S3_ENDPOINT) throw new Error(`test/services/s3.sh printed no S3_ENDPOINT for ${dir}`);
  return {
    endpoint: e.S3_ENDPOINT,
    env: { AWS_ACCESS_KEY_ID: e.AWS_ACCESS_KEY_ID ?? '', AWS_SECRET_ACCESS_KEY: e.AWS_SECRET_ACCESS_KEY ?? '', AWS_REGION: e.AWS_REGION ?? 'us-east-1' },
    startedHere,
    pids: swiftPids(dir),
    dir,
    stop: async () => {
      if (startedHere) await script(root, dir, ['clean']);
    },
  };
}

function storage(endpoint: string, bucket: string, env: Record<string, string>): S3Storage {
  return new S3Storage({
    endpoint,
    bucket,
    region: env.AWS_REGION ?? 'us-east-1',
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID ?? '', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? '' },
  });
}

/** Objects and bytes stored in a bucket (0/0 when it does not exist). */
export async function bucketUsage(endpoint: string, bucket: string, env: Record<string, string>): Promise<{ objects: number; bytes: number }> {
  const s = storage(endpoint, bucket, env);
  try {
    if (!(await s.exists())) return { objects: 0, bytes: 0 };
    let objects = 0;
    let bytes = 0;
    for await (const o of s.list('')) {
      objects++;
      bytes += o.size;
    }
    return { objects, bytes };
  } finally {
    await s.close();
  }
}

/** Deletes every object of the bucket, then the bucket; a missing bucket is fine. */
export async function deleteBucket(endpoint: string, bucket: string, env: Record<string, string>): Promise<void> {
  const s = storage(endpoint, bucket, env);
  try {
    if (!(await s.exists())) return;
    const names: string[] = [];
    for await (const o of s.list('')) names.push(o.name);
    for (let i = 0; i < names.length; i += 16) await Promise.all(names.slice(i, i + 16).map((n) => s.delete(n)));
    const client = new S3Client({
      endpoint,
      region: s.region,
      forcePathStyle: true,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID ?? '', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? '' },
    });
    try {
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
    } finally {
      client.destroy();
    }
  } finally {
    await s.close();
  }
}

/** A self-signed certificate for 127.0.0.1 (openssl), written to dir/{key,cert}.pem. */
export function selfSignedCert(dir: string): { key: Buffer; cert: Buffer; certFile: string } {
  fs.mkdirSync(dir, { recursive: true });
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert), certFile: cert };
}

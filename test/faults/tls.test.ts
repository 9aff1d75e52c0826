/**
 * Issue 9, TLS: lifeboat verifies an https S3 endpoint's certificate by default; a private CA is
 * trusted with --cacert (or LIFEBOAT_CACERT); --insecure-tls turns verification off, loudly.
 * The endpoint is a TLS-terminating proxy with a self-signed certificate in front of the real
 * S3 server.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAST_KDF, runCli } from '../helpers/cli.js';
import { deleteBucket, makeTempDir, randomBucketName, s3Endpoint } from '../helpers/storage-backends.js';

const closers: Array<() => void> = [];
const buckets: string[] = [];
afterAll(async () => {
  for (const c of closers) c();
  await Promise.allSettled(buckets.map((b) => deleteBucket(s3Endpoint(), b)));
});

async function tlsProxy(dir: string): Promise<{ url: string; cert: string }> {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const upstream = new URL(s3Endpoint());
  const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
    const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, cert };
}

describe('TLS to the S3 endpoint', () => {
  it('verifies certificates by default; --cacert trusts a private CA; --insecure-tls is explicit and loud', async () => {
    const dir = await makeTempDir();
    const { url, cert } = await tlsProxy(dir);
    const bucket = randomBucketName();
    buckets.push(bucket);
    fs.writeFileSync(path.join(dir, 'pw'), 'secret\n', { mode: 0o600 });
    const env = { LIFEBOAT_REPOSITORY: `s3:${url}/${bucket}`, LIFEBOAT_PASSWORD_FILE: path.join(dir, 'pw'), LIFEBOAT_CACHE_DIR: path.join(dir, 'cache'), LIFEBOAT_S3_TIMEOUT: '10s' };

    const refused = await runCli(['init', ...FAST_KDF], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^lifeboat: .*(self[- ]signed|certificate)/i)]);

    const withCa = await runCli(['--cacert', cert, 'init', ...FAST_KDF], env);
    expect(withCa.code, withCa.stderr).toBe(0);
    const viaEnv = await runCli(['snapshots', '--json'], { ...env, LIFEBOAT_CACERT: cert });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(JSON.parse(viaEnv.stdout)).toEqual([]);

    const insecure = await runCli(['--insecure-tls', 'snapshots', '--json'], env);
    expect(insecure.code, insecure.stderr).toBe(0);
    expect(insecure.stderr).toMatch(/warning: TLS certificate verification is off/);

    // packs above 1 MB (the SDK sends them with Expect: 100-continue) go through the same TLS
    // settings: with the CA, and with --insecure-tls
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'random.bin'), randomBytes(6 * 1024 * 1024));
    for (const flags of [['--cacert', cert], ['--insecure-tls']]) {
      const backup = await runCli([...flags, 'backup', src], env);
      expect(backup.code, backup.stderr).toBe(0);
    }
    const target = path.join(dir, 'target');
    const restored = await runCli(['--cacert', cert, 'restore', 'latest', '--target', target], env);
    expect(restored.code, restored.stderr).toBe(0);
    expect(fs.readFileSync(path.join(target, src, 'random.bin')).equals(fs.readFileSync(path.join(src, 'random.bin')))).toBe(true);

    const missing = await runCli(['--cacert', path.join(dir, 'nope.pem'), 'snapshots'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/--cacert .*nope\.pem: ENOENT/);
  }, 120_000);
});

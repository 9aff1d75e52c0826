/** TLS (clouds.yaml cacert / verify: false) and HTTP(S) proxies (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCloud } from '../fakes/openstack/fake-cloud.js';
import { openOpenStack } from '../../src/cloud/openstack/index.js';
import { proxyFor } from '../../src/cloud/openstack/http.js';

let dir: string;
let tlsFiles: { key: Buffer; cert: Buffer; certFile: string };

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-tls-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  tlsFiles = { key: fs.readFileSync(key), cert: fs.readFileSync(cert), certFile: cert };
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A forward proxy: CONNECT tunnels and absolute-URI HTTP requests; counts what it carried. */
async function startProxy(): Promise<{ url: string; connects: string[]; plain: string[]; close: () => Promise<void> }> {
  const connects: string[] = [];
  const plain: string[] = [];
  const server = http.createServer((req, res) => {
    plain.push(req.url ?? '');
    const u = new URL(req.url ?? '');
    const up = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  const tunnels = new Set<net.Socket>();
  server.on('connect', (req, socket: net.Socket) => {
    connects.push(req.url ?? '');
    tunnels.add(socket);
    const [host, port] = (req.url ?? '').split(':');
    const up = net.connect(Number(port), host, () => {
      tunnels.add(up);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connects,
    plain,
    close: () => new Promise<void>((r) => {
      // tunnelled sockets are no longer the server's: end them too
      for (const t of tunnels) t.destroy();
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

type Fake = Awaited<ReturnType<typeof startFakeCloud>>;
let f: Fake;
afterEach(async () => f?.close());

function cloudsYaml(extra: string): string {
  const file = path.join(dir, `clouds-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, `clouds:\n  tls:\n    auth:\n      auth_url: ${f.url}/identity\n      application_credential_id: ${f.appCred.id}\n      application_credential_secret: ${f.appCred.secret}\n    auth_type: v3applicationcredential\n    region_name: RegionOne\n${extra}`);
  return file;
}

const open = (file: string, env: NodeJS.ProcessEnv = {}) => openOpenStack({ name: 'tls', clouds_file: file, server_id: f.web1.id }, { env: { LIFEBOAT_OPENSTACK_POLL_INTERVAL: '40ms', ...env } });

describe('TLS', () => {
  it('cacert from clouds.yaml verifies the cloud; without it the error is one line; verify: false skips', async () => {
    f = await startFakeCloud({ tls: tlsFiles });
    expect(await open(cloudsYaml(`    cacert: ${tlsFiles.certFile}\n`)).list()).toEqual([]);
    await expect(open(cloudsYaml('')).list()).rejects.toThrow(/^openstack cloud "tls": Keystone: cannot reach https:\/\/127\.0\.0\.1:\d+\/identity\/v3\/auth\/tokens: .*(self-signed|SELF_SIGNED)/);
    expect(await open(cloudsYaml('    verify: false\n')).list()).toEqual([]);
  });
});

describe('proxies', () => {
  it('HTTPS through a CONNECT tunnel; HTTP with absolute URIs; NO_PROXY and the metadata service go direct', async () => {
    f = await startFakeCloud({ tls: tlsFiles });
    const proxy = await startProxy();
    try {
      const p = open(cloudsYaml(`    cacert: ${tlsFiles.certFile}\n`), { HTTPS_PROXY: proxy.url });
      const r = await p.create({ type: 'daily', rotation: 2, labels: { reason: 'test' }, wait: true, timeoutMs: 60_000 });
      expect(r.complete).toBe(true);
      expect(proxy.connects.length).toBeGreaterThan(0);
      expect(proxy.connects.every((c) => c === new URL(f.url).host)).toBe(true);
    } finally {
      await proxy.close();
    }
    await f.close();
    f = await startFakeCloud();
    const proxy2 = await startProxy();
    try {
      // server id from the metadata service: never through the proxy
      const viaMetadata = openOpenStack({ name: 'tls', clouds_file: cloudsYaml('') }, {
        env: { http_proxy: proxy2.url, LIFEBOAT_OPENSTACK_METADATA_URL: f.url, LIFEBOAT_OPENSTACK_DMI_DIR: path.join(dir, 'none') },
      });
      await viaMetadata.list();
      expect(proxy2.plain.some((u) => u.startsWith(`${f.url}/identity/v3/auth/tokens`))).toBe(true);
      expect(proxy2.plain.some((u) => u.includes('meta_data.json'))).toBe(false);
      expect(f.cloud.requests((q) => q.path === '/openstack/latest/meta_data.json')).toHaveLength(1);
      const before = proxy2.plain.length;
      await open(cloudsYaml(''), { http_proxy: proxy2.url, no_proxy: 'localhost,127.0.0.1' }).list();
      expect(proxy2.plain.length).toBe(before);
    } finally {
      await proxy2.close();
    }
  });

  it('proxyFor follows curl/requests conventions', () => {
    const u = (s: string) => new URL(s);
    expect(proxyFor(u('https://keystone.example.com:5000/v3'), { HTTPS_PROXY: 'proxy:3128' })?.href).toBe('http://proxy:3128/');
    expect(proxyFor(u('http://nova.example.com/v2.1'), { HTTPS_PROXY: 'http://p:1' })).toBeUndefined();
    expect(proxyFor(u('https://keystone.example.com/'), { https_proxy: 'http://p:1', no_proxy: '.example.com' })).toBeUndefined();
    expect(proxyFor(u('https://keystone.example.com/'), { https_proxy: 'http://p:1', NO_PROXY: 'example.com' })).toBeUndefined();
    expect(proxyFor(u('https://keystone.example.org/'), { https_proxy: 'http://p:1', no_proxy: 'example.com' })?.host).toBe('p:1');
  });
});

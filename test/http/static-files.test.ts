import { expect } from 'chai';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StaticFiles } from '../../src/http/static-files.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { call, httpBase } from './http-support.js';

/** A raw request line, so the path reaches the server exactly as written (fetch would normalize `..`). */
function rawGet(port: number, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let data = '';
    s.on('data', (c) => (data += c.toString('latin1')));
    s.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), text: data }));
    s.on('error', reject);
  });
}

describe('http: web client files (/)', () => {
  let dir: string;
  let root: string;
  let server: http.Server;
  let base: string;
  let port: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sp-web-'));
    root = join(dir, 'web');
    mkdirSync(join(root, 'sub'), { recursive: true });
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(root, 'app.js'), 'console.log(1)');
    writeFileSync(join(root, 'style.css'), 'body{}');
    writeFileSync(join(root, 'sub', 'index.html'), 'sub');
    writeFileSync(join(dir, 'secret.txt'), 'do not serve');
    const files = new StaticFiles(root);
    server = http.createServer((req, res) => void files.handle(req, res, new URL(req.url ?? '/', 'http://x')));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as net.AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves index.html at / and files with their type', async () => {
    const index = await fetch(`${base}/`);
    expect(index.status).to.equal(200);
    expect(index.headers.get('content-type')).to.equal('text/html; charset=utf-8');
    expect(await index.text()).to.contain('<title>t</title>');
    const js = await fetch(`${base}/app.js`);
    expect(js.headers.get('content-type')).to.equal('text/javascript; charset=utf-8');
    expect(js.headers.get('x-content-type-options')).to.equal('nosniff');
    expect((await fetch(`${base}/style.css`)).headers.get('content-type')).to.equal('text/css; charset=utf-8');
    expect(await (await fetch(`${base}/sub/`)).text()).to.equal('sub');
  });

  it('answers HEAD without a body and other methods with 405', async () => {
    const head = await fetch(`${base}/app.js`, { method: 'HEAD' });
    expect(head.status).to.equal(200);
    expect(head.headers.get('content-length')).to.equal('14');
    expect(await head.text()).to.equal('');
    const post = await fetch(`${base}/app.js`, { method: 'POST' });
    expect(post.status).to.equal(405);
    expect(post.headers.get('allow')).to.equal('GET, HEAD');
  });

  it('answers 404 for missing files and never serves outside its root', async () => {
    expect((await fetch(`${base}/missing.js`)).status).to.equal(404);
    expect((await fetch(`${base}/sub`)).status).to.equal(404);
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/sub/..%2f..%2fsecret.txt', '/..%5csecret.txt']) {
      const r = await rawGet(port, path);
      expect(r.status, path).to.be.oneOf([400, 404]);
      expect(r.text, path).not.to.contain('do not serve');
    }
    expect((await rawGet(port, '/%00')).status).to.equal(400);
    expect((await rawGet(port, '/%E0%A4%A')).status).to.equal(400);
  });

  it('says how to build the client when there is none', async () => {
    const none = new StaticFiles(undefined);
    const s = http.createServer((req, res) => void none.handle(req, res, new URL(req.url ?? '/', 'http://x')));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    try {
      const r = await fetch(`http://127.0.0.1:${(s.address() as net.AddressInfo).port}/`);
      expect(r.status).to.equal(404);
      expect(((await r.json()) as { error: string }).error).to.match(/npm run build/);
    } finally {
      await new Promise((r) => s.close(r));
    }
  });

  describe('on the server', () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer({ sip: { domain: 'chat.example.org' } });
    });
    after(async () => srv.stop());

    it('GET /client-config.json gives the web client the SIP domain', async () => {
      const r = await call(httpBase(srv.server), 'GET', '/client-config.json', { token: null });
      expect(r.status).to.equal(200);
      expect(r.json).to.deep.equal({ domain: 'chat.example.org' });
    });

    it('answers /favicon.ico with 204 and a bad request target with 400', async () => {
      const port = srv.server.listeners.find((l) => l.protocol === 'ws')!.port;
      expect((await fetch(`${httpBase(srv.server)}/favicon.ico`)).status).to.equal(204);
      expect((await rawGet(port, 'http://[bad')).status).to.equal(400);
    });
  });
});

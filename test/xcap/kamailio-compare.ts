/**
 * The same XCAP requests to our server and to Kamailio's xcap_server (5.6, db_text), side
 * by side as a Markdown table (docs/xcap.md). Not a test: it needs `kamailio` with the
 * xhttp, db_text and xcap_server modules. Run: `node --import tsx test/xcap/kamailio-compare.ts`.
 * Kamailio's script does no authentication here (its module leaves that to the script).
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { freePort } from '../support/server-process.js';
import { until } from '../support/wait.js';
import { openStore } from '../../src/store/index.js';
import { authorization, parseChallenge } from '../auth/digest-client.js';
import { call, httpBase, TOKEN } from '../http/http-support.js';
import { startTestServer } from '../support/test-server.js';

const PIDF = 'application/pidf+xml';
const EL = 'application/xcap-el+xml';
const doc = (tuples: string[]) => `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">${tuples.map((t) => `<tuple id="${t}"><status><basic>open</basic></status></tuple>`).join('')}</presence>`;

async function req(base: string, digest: boolean, method: string, path: string, body?: string, type?: string, headers: Record<string, string> = {}) {
  const url = base + '/xcap-root' + path;
  const h: Record<string, string> = { ...headers };
  if (body !== undefined) h['Content-Type'] = type!;
  if (digest) {
    const first = await fetch(url);
    await first.text();
    const c = first.headers.get('www-authenticate')!.split(/,\s*(?=Digest )/).map(parseChallenge)[0]!;
    h.Authorization = authorization(c, { username: 'alice', password: 'alice-pass', method, uri: new URL(url).pathname + new URL(url).search });
  }
  const res = await fetch(url, { method, headers: h, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', etag: res.headers.get('etag') ?? '', text: text.replace(/\s+/g, ' ').slice(0, 160) };
}

const MODULES = process.env.KAMAILIO_MODULES ?? '/usr/lib/x86_64-linux-gnu/kamailio/modules/';
const dir = mkdtempSync(join(tmpdir(), 'sp-kxcap-'));
const port = await freePort();
copyFileSync('/usr/share/kamailio/dbtext/kamailio/xcap', join(dir, 'xcap'));
writeFileSync(join(dir, 'version'), 'id(int,auto) table_name(string) table_version(int) \n0:xcap:4\n');
writeFileSync(
  join(dir, 'kamailio.cfg'),
  `#!KAMAILIO
debug=1
log_stderror=yes
children=1
tcp_children=2
listen=tcp:127.0.0.1:${port}
tcp_accept_no_cl=yes
mpath="${MODULES}"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xhttp.so"
loadmodule "db_text.so"
loadmodule "xcap_server.so"
modparam("xcap_server", "db_url", "text://${dir}")
request_route { exit; }
event_route[xhttp:request] {
  if($hu=~"^/xcap-root/") {
    set_reply_close();
    set_reply_no_connect();
    $xcapuri(u=>data) = $hu;
    $var(uri) = $xcapuri(u=>xuid);
    switch($rm) {
      case "PUT": xcaps_put("$var(uri)", "$hu", "$rb"); exit;
      case "GET": xcaps_get("$var(uri)", "$hu"); exit;
      case "DELETE": xcaps_del("$var(uri)", "$hu"); exit;
    }
  }
  xhttp_reply("404", "Not Found", "text/plain", "");
}
`,
);
const kamailio = spawn('kamailio', ['-f', join(dir, 'kamailio.cfg'), '-DD', '-E', '-w', dir], { stdio: 'ignore' });
await until(async () => (await fetch(`http://127.0.0.1:${port}/`).then((r) => r.status).catch(() => 0)) === 404, 'kamailio listening', 10_000);

const exited = new Promise((r) => kamailio.once('exit', r));
try {
  const store = await openStore({ logger: pino({ level: 'silent' }) });
  const srv = await startTestServer({ admin: { token: TOKEN } }, { store });
  const ours = httpBase(srv.server);
  await call(ours, 'POST', '/api/users', { body: { username: 'alice', password: 'alice-pass' } });
  const kam = `http://127.0.0.1:${port}`;
  const D = '/pidf-manipulation/users/sip:alice@example.com/index';
  const steps: Array<[string, string, string, string?, string?, ((e: string) => Record<string, string>)?]> = [
    ['GET absent doc', 'GET', D],
    ['PUT new doc', 'PUT', D, doc(['a']), PIDF],
    ['PUT replace doc', 'PUT', D, doc(['a']), PIDF],
    ['GET doc', 'GET', D],
    ['GET element by attr', 'GET', `${D}/~~/presence/tuple%5b@id=%22a%22%5d`],
    ['GET attribute', 'GET', `${D}/~~/presence/tuple%5b1%5d/@id`],
    ['PUT new element', 'PUT', `${D}/~~/presence/tuple%5b@id=%22b%22%5d`, '<tuple id="b"><status><basic>closed</basic></status></tuple>', EL],
    ['GET ambiguous selector', 'GET', `${D}/~~/presence/tuple`],
    ['PUT element position 5 (cannot-insert)', 'PUT', `${D}/~~/presence/tuple%5b5%5d`, '<tuple id="c"><status><basic>open</basic></status></tuple>', EL],
    ['PUT element, name differs from selector', 'PUT', `${D}/~~/presence/tuple%5b@id=%22d%22%5d`, '<tuple id="e"><status><basic>open</basic></status></tuple>', EL],
    ['PUT element, no parent', 'PUT', `${D}/~~/presence/tuple%5b@id=%22zz%22%5d/status/basic`, '<basic>open</basic>', EL],
    ['PUT not well-formed doc', 'PUT', D, '<presence', PIDF],
    ['PUT doc, wrong If-Match', 'PUT', D, doc(['a']), PIDF, () => ({ 'If-Match': '"nope"' })],
    ['GET doc, If-None-Match current', 'GET', D, undefined, undefined, (e) => ({ 'If-None-Match': e })],
    ['GET malformed selector', 'GET', `${D}/~~/presence/tuple%5b`],
    ['DELETE element', 'DELETE', `${D}/~~/presence/tuple%5b@id=%22b%22%5d`],
    ['DELETE element again', 'DELETE', `${D}/~~/presence/tuple%5b@id=%22b%22%5d`],
    ['DELETE root element', 'DELETE', `${D}/~~/presence`],
    ['DELETE doc', 'DELETE', D],
    ['GET deleted doc', 'GET', D],
  ];
  const etags = { ours: '', kam: '' };
  console.log('| request | ours | Kamailio 5.6.3 |\n| --- | --- | --- |');
  for (const [what, method, path, body, type, headers] of steps) {
    const a = await req(ours, true, method, path, body, type, headers?.(etags.ours));
    let b;
    try {
      b = await req(kam, false, method, path, body, type, headers?.(etags.kam));
    } catch (e) {
      b = { status: 0, type: '', etag: '', text: String(e) };
    }
    if (a.etag) etags.ours = a.etag;
    if (b.etag) etags.kam = b.etag;
    const show = (r: typeof a) => `${r.status}${r.type ? ` ${r.type.split(';')[0]}` : ''}${r.etag ? ' ETag' : ''}${r.text ? ` \`${r.text.slice(0, 110)}\`` : ''}`;
    console.log(`| ${what} | ${show(a)} | ${show(b)} |`);
  }
  await srv.stop();
  await store.close();
} finally {
  kamailio.kill('SIGTERM');
  await exited;
  rmSync(dir, { recursive: true, force: true });
}


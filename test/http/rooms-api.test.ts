import { expect } from 'chai';
import { pino } from 'pino';
import { openStore, type Store } from '../../src/store/index.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { call, httpBase, TOKEN, basic } from './http-support.js';

describe('http: rooms (admin API and /api/me/rooms)', function () {
  this.timeout(20000);
  let store: Store;
  let srv: TestServer;
  let base: string;

  before(async () => {
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ admin: { token: TOKEN } }, { store });
    base = httpBase(srv.server);
    for (const username of ['alice', 'bob']) expect((await call(base, 'POST', '/api/users', { body: { username, password: `${username}-pass` } })).status).to.equal(201);
  });
  after(async () => {
    await srv.stop();
    await store.close();
  });

  it('the administrator creates, lists, shows, changes and deletes a room; names of users and bad bodies are refused', async () => {
    const created = await call(base, 'POST', '/api/rooms', { body: { name: 'ops', owner: 'alice', topic: 'on call', persistent: true } });
    expect(created.status).to.equal(201);
    expect(created.json).to.include({ uri: 'sip:ops@example.com', owner: 'sip:alice@example.com', topic: 'on call', persistent: true, membersOnly: true });
    expect(created.json.members).to.deep.equal(['sip:alice@example.com']);
    expect((await call(base, 'POST', '/api/rooms', { body: { name: 'ops', owner: 'bob' } })).status).to.equal(409);
    // A room may not take an account's name.
    expect((await call(base, 'POST', '/api/rooms', { body: { name: 'bob', owner: 'alice' } })).json.error).to.match(/Name Taken By A User/);
    expect((await call(base, 'POST', '/api/rooms', { body: { name: 'x', owner: 'alice', colour: 'red' } })).status).to.equal(400);
    expect((await call(base, 'POST', '/api/rooms', { body: { name: 'x' } })).status).to.equal(400);
    expect((await call(base, 'GET', '/api/rooms')).json.map((r: { uri: string }) => r.uri)).to.include('sip:ops@example.com');
    expect((await call(base, 'GET', '/api/rooms/ops')).json.topic).to.equal('on call');
    expect((await call(base, 'PATCH', '/api/rooms/sip:ops@example.com', { body: { topic: 'incident' } })).json.topic).to.equal('incident');
    expect((await call(base, 'GET', '/api/rooms/ops', { token: null })).status).to.equal(401);
    expect((await call(base, 'DELETE', '/api/rooms/ops')).status).to.equal(204);
    expect((await call(base, 'GET', '/api/rooms/ops')).status).to.equal(404);
  });

  it('a user lists, creates, joins and leaves rooms at /api/me/rooms; only the owner changes or deletes one; a SIP member sees it', async () => {
    const alice = basic('alice', 'alice-pass');
    const bob = basic('bob', 'bob-pass');
    const made = await call(base, 'POST', '/api/me/rooms', { token: null, headers: alice, body: { name: 'lunch' } });
    expect(made.status).to.equal(201);
    expect(made.json).to.include({ owner: 'sip:alice@example.com', persistent: false });
    expect((await call(base, 'POST', '/api/me/rooms', { token: null, headers: alice, body: { name: 'x', owner: 'bob' } })).status).to.equal(400);
    expect((await call(base, 'POST', '/api/me/rooms/lunch/join', { token: null, headers: bob })).json.members).to.deep.equal(['sip:alice@example.com', 'sip:bob@example.com']);
    expect((await call(base, 'GET', '/api/me/rooms', { token: null, headers: bob })).json.map((r: { uri: string }) => r.uri)).to.deep.equal(['sip:lunch@example.com']);
    expect((await call(base, 'PATCH', '/api/me/rooms/lunch', { token: null, headers: bob, body: { topic: 'pizza' } })).status).to.equal(403);
    expect((await call(base, 'DELETE', '/api/me/rooms/lunch', { token: null, headers: bob })).status).to.equal(403);
    expect((await call(base, 'GET', '/api/me/rooms', { token: null, headers: basic('bob', 'wrong') })).status).to.equal(401);

    // Bob, a member through the API, speaks in the room over SIP.
    const ua = await TestUa.create({ port: srv.port, user: 'bob', domain: 'example.com' });
    try {
      const req = ua.request('MESSAGE', 'sip:lunch@example.com', { body: 'hungry?', headers: { 'Content-Type': 'text/plain' } });
      expect((await ua.transact(req)).status).to.equal(202);
    } finally {
      await ua.close();
    }
    expect((await call(base, 'POST', '/api/me/rooms/lunch/leave', { token: null, headers: bob })).json).to.deep.equal({ left: true, ended: false });
    // Alice is the last: leaving ends a room that is not persistent.
    expect((await call(base, 'POST', '/api/me/rooms/lunch/leave', { token: null, headers: alice })).json).to.deep.equal({ left: true, ended: true });
    expect((await call(base, 'GET', '/api/me/rooms', { token: null, headers: alice })).json).to.deep.equal([]);
  });
});

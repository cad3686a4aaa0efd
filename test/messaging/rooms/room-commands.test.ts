import { expect } from 'chai';
import { parseCpim, wrapCpim } from '../../../src/messaging/rooms/cpim.js';
import { parseRoomCommand, RoomCommandError } from '../../../src/messaging/rooms/room-commands.js';

const cmd = (text: string, type: string | undefined = 'text/plain') => parseRoomCommand(type, Buffer.from(text), 'example.com');

describe('messaging: room commands in a MESSAGE body (imc style)', () => {
  it('reads each command and its arguments', () => {
    expect(cmd('#create')).to.deep.equal({ name: 'create', persistent: false, open: false });
    expect(cmd('#CREATE persistent open')).to.deep.equal({ name: 'create', persistent: true, open: true });
    expect(cmd('#join\r\n')).to.deep.equal({ name: 'join' });
    expect(cmd('#leave')).to.deep.equal({ name: 'leave' });
    expect(cmd('#members')).to.deep.equal({ name: 'members' });
    expect(cmd('#topic')).to.deep.equal({ name: 'topic' });
    expect(cmd('#topic  lunch at  noon ')).to.deep.equal({ name: 'topic', topic: 'lunch at  noon' });
    expect(cmd('#ban bob')).to.deep.equal({ name: 'ban', user: 'sip:bob@example.com' });
    expect(cmd('#unban sip:Bob@EXAMPLE.com')).to.deep.equal({ name: 'unban', user: 'sip:Bob@example.com' });
    expect(cmd('#persistent on')).to.deep.equal({ name: 'persistent', on: true });
    expect(cmd('#destroy')).to.deep.equal({ name: 'destroy' });
  });

  it('leaves other text alone: hashtags, several lines, other types, long bodies', () => {
    expect(cmd('#hashtag party')).to.equal(undefined);
    expect(cmd('hello #join')).to.equal(undefined);
    expect(cmd('#join\nand more')).to.equal(undefined);
    expect(cmd('#join', 'text/html')).to.equal(undefined);
    expect(parseRoomCommand(undefined, Buffer.from('#join'), 'example.com')).to.equal(undefined);
    expect(cmd(`#topic ${'x'.repeat(600)}`)).to.equal(undefined);
  });

  it('refuses malformed commands with a reason phrase', () => {
    expect(() => cmd('#ban')).to.throw(RoomCommandError, 'Name One User');
    expect(() => cmd('#ban bob carol')).to.throw(RoomCommandError, 'Name One User');
    expect(() => cmd('#ban bob@elsewhere.org')).to.throw(RoomCommandError, 'Not A User Of This Domain');
    expect(() => cmd('#persistent maybe')).to.throw(RoomCommandError, 'Say On Or Off');
    expect(() => cmd('#create secret')).to.throw(RoomCommandError, 'Unknown Create Option');
    expect(() => cmd(`#topic ${'x'.repeat(300)}`)).to.throw(RoomCommandError, 'Topic Too Long');
  });
});

describe('messaging: message/cpim wrapper (RFC 3862)', () => {
  it('names the sender and carries the body, UTF-8 included, and reads back', () => {
    const body = Buffer.from('grüße', 'utf8');
    const wrapped = wrapCpim({ from: 'sip:alice@example.com', nick: 'Alice "A"', to: 'sip:lobby@example.com', dateTime: Date.UTC(2026, 11, 7), contentType: 'text/plain;charset=utf-8', body });
    expect(wrapped.toString('utf8')).to.equal(
      'From: "Alice \\"A\\"" <sip:alice@example.com>\r\nTo: <sip:lobby@example.com>\r\nDateTime: 2026-12-07T00:00:00.000Z\r\n\r\nContent-Type: text/plain;charset=utf-8\r\n\r\ngrüße',
    );
    const m = parseCpim(wrapped)!;
    expect(m.contentType).to.equal('text/plain;charset=utf-8');
    expect(m.body.toString('utf8')).to.equal('grüße');
    expect(m.headers.map(([n]) => n)).to.deep.equal(['From', 'To', 'DateTime']);
  });

  it('reads nothing from what is not CPIM', () => {
    expect(parseCpim(Buffer.from('just text'))).to.equal(undefined);
    expect(parseCpim(Buffer.from('From: x\r\n\r\nno mime headers end'))).to.equal(undefined);
    expect(parseCpim(Buffer.from('no colon here\r\n\r\nContent-Type: text/plain\r\n\r\nx'))).to.equal(undefined);
  });
});

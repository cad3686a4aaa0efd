import { formatSipUri, isSipUri, tryParseUri } from '../../sip/uri.js';

/**
 * Room commands a phone can send as a text/plain MESSAGE to the room (the way Kamailio's
 * imc module takes `#join` and the rest): only these words are commands; any other text,
 * `#hashtags` included, is a message to the room.
 */
export type RoomCommand =
  | { readonly name: 'create'; readonly persistent: boolean; readonly open: boolean }
  | { readonly name: 'join' }
  | { readonly name: 'leave' }
  | { readonly name: 'members' }
  | { readonly name: 'topic'; readonly topic?: string }
  | { readonly name: 'ban' | 'unban'; readonly user: string }
  | { readonly name: 'persistent'; readonly on: boolean }
  | { readonly name: 'destroy' };

/** What a command line could not be read as (answered 400 with this reason). */
export class RoomCommandError extends Error {
  override name = 'RoomCommandError';
}

const WORDS = new Set(['create', 'join', 'leave', 'members', 'topic', 'ban', 'unban', 'persistent', 'destroy']);
/** A topic is one line of at most this many characters. */
export const MAX_TOPIC_LENGTH = 256;
/** Commands are short: a longer body is a message. */
const MAX_COMMAND_BYTES = 512;

/**
 * The command in a MESSAGE body, or undefined when the body is a message. `user` of
 * `#ban` is a user name of `domain` or a SIP URI, returned as an AoR.
 */
export function parseRoomCommand(contentType: string | undefined, body: Buffer, domain: string): RoomCommand | undefined {
  if (contentType !== 'text/plain' || body.length === 0 || body.length > MAX_COMMAND_BYTES || body[0] !== 0x23 /* # */) return undefined;
  const line = body.toString('utf8').trim();
  if (line.includes('\n')) return undefined;
  const m = /^#([a-z]+)(?:[ \t]+(.*))?$/i.exec(line);
  if (!m || !WORDS.has(m[1]!.toLowerCase())) return undefined;
  const word = m[1]!.toLowerCase();
  const rest = (m[2] ?? '').trim();
  const args = rest === '' ? [] : rest.split(/[ \t]+/);
  switch (word) {
    case 'create': {
      const flags = new Set(args.map((a) => a.toLowerCase()));
      for (const f of flags) if (f !== 'persistent' && f !== 'open') throw new RoomCommandError('Unknown Create Option');
      return { name: 'create', persistent: flags.has('persistent'), open: flags.has('open') };
    }
    case 'join':
    case 'leave':
    case 'members':
    case 'destroy':
      return { name: word };
    case 'topic':
      if (rest.length > MAX_TOPIC_LENGTH) throw new RoomCommandError('Topic Too Long');
      return rest === '' ? { name: 'topic' } : { name: 'topic', topic: rest };
    case 'ban':
    case 'unban':
      if (args.length !== 1) throw new RoomCommandError('Name One User');
      return { name: word, user: userAor(args[0]!, domain) };
    case 'persistent': {
      const v = (args[0] ?? '').toLowerCase();
      if (v !== 'on' && v !== 'off') throw new RoomCommandError('Say On Or Off');
      return { name: 'persistent', on: v === 'on' };
    }
  }
  return undefined;
}

/** `bob`, `bob@example.com` or `sip:bob@example.com` as `sip:bob@<domain>` (ours only). */
function userAor(text: string, domain: string): string {
  const withScheme = /^sips?:/i.test(text) ? text : text.includes('@') ? `sip:${text}` : `sip:${text}@${domain}`;
  const uri = tryParseUri(withScheme);
  if (!uri || !isSipUri(uri) || !uri.user || uri.host.toLowerCase() !== domain.toLowerCase()) throw new RoomCommandError('Not A User Of This Domain');
  return formatSipUri({ user: uri.user, host: domain.toLowerCase() });
}

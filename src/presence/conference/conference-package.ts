import type { Logger } from 'pino';
import type { SipRequest } from '../../sip/message.js';
import type { EventPackage, NotifyBody, PackageHost, SubscribeAttempt, SubscriptionDecision } from '../event-package.js';
import { PartialState, type StateElement } from '../partial-state.js';
import type { Subscription } from '../subscription.js';
import { buildConferenceInfo, CONFERENCE_INFO_CONTENT_TYPE, deletedUser, serializeUser } from './conference-info-document.js';

/** A room as the conference package sees it (the room service's view). */
export interface ConferenceRoom {
  readonly uri: string;
  readonly owner: string;
  readonly topic: string;
  /** In join order. */
  readonly members: readonly string[];
  readonly bans: readonly string[];
}

/** What the package asks of the rooms (messaging/rooms/room-service.ts). */
export interface ConferenceRooms {
  get(uri: string): ConferenceRoom | undefined;
  /** Adds a member (SUBSCRIBE joins, as #join does); false when refused (banned, full). */
  joinBySubscribe(uri: string, member: string, request: SipRequest): Promise<boolean>;
}

/**
 * The conference event package (RFC 4575) for chat rooms: a subscription to a room's URI
 * joins the watcher to it (members-only rooms have no outside watchers) and gives the
 * member list, full first (and after a refresh), then partial documents with the members
 * who came, changed role or left. The room's topic is the description's subject.
 */
export class ConferencePackage implements EventPackage {
  readonly name = 'conference';
  readonly accept = [CONFERENCE_INFO_CONTENT_TYPE] as const;
  private host?: PackageHost;
  private readonly partial = new PartialState();

  constructor(
    private readonly rooms: ConferenceRooms,
    private readonly log?: Logger,
  ) {}

  attach(host: PackageHost): void {
    this.host = host;
  }

  async authorize(attempt: SubscribeAttempt): Promise<SubscriptionDecision> {
    const room = this.rooms.get(attempt.resource);
    // No such room (or a user's address): nothing to watch here.
    if (!room || room.bans.includes(attempt.watcher)) return 'block';
    if (room.members.includes(attempt.watcher)) return 'allow';
    const joined = await this.rooms.joinBySubscribe(attempt.resource, attempt.watcher, attempt.request);
    this.log?.debug({ room: attempt.resource, watcher: attempt.watcher, joined }, 'conference subscription joins the room');
    return joined ? 'allow' : 'block';
  }

  /** The room's members or topic changed: its watchers hear of it. */
  roomChanged(uri: string): void {
    if (this.host && this.host.subscriptionsTo(this.name, uri).length > 0) this.host.resourceChanged(this.name, uri);
  }

  body(sub: Subscription): NotifyBody | undefined {
    if (sub.status === 'terminated' && sub.reason !== 'timeout') return undefined;
    const room = this.rooms.get(sub.resource);
    const elements = new Map<string, StateElement>();
    for (const m of room?.members ?? []) {
      const roles = m === room!.owner ? ['owner', 'participant'] : ['participant'];
      elements.set(m, { live: true, xml: serializeUser({ entity: m, displayText: nickOf(m), roles }) });
    }
    const next = this.partial.next(sub, elements, deletedUser);
    return { contentType: CONFERENCE_INFO_CONTENT_TYPE, body: buildConferenceInfo(sub.resource, sub.documentVersion++, next.state, room?.topic ?? '', next.elements) };
  }

  onRefresh(sub: Subscription): void {
    this.partial.reset(sub);
  }

  onRemoved(sub: Subscription): void {
    this.partial.reset(sub);
  }
}

function nickOf(aor: string): string {
  return /^sips?:([^@]+)@/.exec(aor)?.[1] ?? aor;
}

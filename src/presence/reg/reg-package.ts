import type { Logger } from 'pino';
import type { Binding } from '../../registrar/binding.js';
import type { BindingEvent } from '../../registrar/location-store.js';
import type { WallClock } from '../../util/timers.js';
import type { EventPackage, NotifyBody, PackageHost, SubscribeAttempt, SubscriptionDecision } from '../event-package.js';
import { PartialState, type StateElement } from '../partial-state.js';
import type { Subscription } from '../subscription.js';
import { OWNER_ONLY } from '../winfo/winfo-package.js';
import { buildRegInfo, REGINFO_CONTENT_TYPE, serializeContact, stableId, type ContactEvent } from './reginfo-document.js';

export interface RegPackageOptions {
  /** The address of record's bindings now (the location store: shared by a cluster). */
  readonly bindings: (aor: string) => readonly Binding[] | Promise<readonly Binding[]>;
  readonly wallClock: WallClock;
  readonly logger?: Logger;
}

/** Ended contacts kept per address of record until their watchers were told, at most. */
const MAX_ENDED = 32;


/**
 * The registration event package (RFC 3680): a user watches the bindings of its own
 * address of record as the registrar holds them, a full reginfo document first (and after
 * a refresh), then partial ones with the contacts that changed and why: registered,
 * refreshed, expired, unregistered, or deactivated (its flow dropped: register again).
 * Kept only for watched addresses; read from the location store when the first watcher
 * comes, then followed through its binding events.
 */
export class RegPackage implements EventPackage {
  readonly name = 'reg';
  readonly accept = [REGINFO_CONTENT_TYPE] as const;
  private host?: PackageHost;
  /** Contacts of watched addresses of record, by contact id. */
  private readonly contacts = new Map<string, Map<string, StateElement>>();
  private readonly partial = new PartialState();

  constructor(private readonly options: RegPackageOptions) {}

  attach(host: PackageHost): void {
    this.host = host;
  }

  async authorize(attempt: SubscribeAttempt): Promise<SubscriptionDecision> {
    // RFC 3680 §6: registration state is the user's own business.
    const decision = await OWNER_ONLY(attempt);
    // The first watcher of this address: its state is read now, and followed from here on.
    if (decision === 'allow' && !this.host?.subscriptionsTo(this.name, attempt.resource).length) this.contacts.set(attempt.resource, this.fromBindings(await this.options.bindings(attempt.resource)));
    return decision;
  }

  /**
   * The state of a watched address, read from the location store when it is not held (a
   * subscription restored after a restart): at once when the store answers at once, else
   * when it answers, its watchers then told.
   */
  private stateOf(aor: string): Map<string, StateElement> | undefined {
    const held = this.contacts.get(aor);
    if (held) return held;
    const read = this.options.bindings(aor);
    if (!(read instanceof Promise)) {
      const m = this.fromBindings(read);
      this.contacts.set(aor, m);
      return m;
    }
    read.then(
      (bindings) => {
        if (this.contacts.has(aor)) return;
        this.contacts.set(aor, this.fromBindings(bindings));
        this.host?.resourceChanged(this.name, aor);
      },
      (err: unknown) => this.options.logger?.warn({ err, aor }, 'bindings not read for registration state'),
    );
    return undefined;
  }

  private fromBindings(bindings: readonly Binding[]): Map<string, StateElement> {
    const now = this.options.wallClock.nowMs();
    const m = new Map<string, StateElement>();
    for (const b of bindings) if (b.reachable && b.expiresAt > now) m.set(contactId(b), this.element(b, 'registered', now));
    return m;
  }

  /** A binding changed in the location service: watchers of its address hear of it. */
  bindingEvent(e: BindingEvent): void {
    const aor = e.binding.aor;
    if (!this.host || this.host.subscriptionsTo(this.name, aor).length === 0) {
      this.contacts.delete(aor);
      return;
    }
    // Held already, or read now (after a restart): the binding as it is now is in it either way.
    const held = this.contacts.has(aor);
    const m = this.stateOf(aor);
    if (!m) return;
    if (!held) {
      this.host.resourceChanged(this.name, aor);
      return;
    }
    const id = contactId(e.binding);
    m.delete(id);
    m.set(id, this.element(e.binding, e.event, this.options.wallClock.nowMs()));
    // Ended contacts stay until the next change pushes them out (partial NOTIFYs tell them once).
    let ended = 0;
    for (const [k, el] of [...m].reverse()) if (!el.live && ++ended > MAX_ENDED) m.delete(k);
    this.host.resourceChanged(this.name, aor);
  }

  body(sub: Subscription): NotifyBody | undefined {
    if (sub.status === 'terminated' && sub.reason !== 'timeout') return undefined;
    const m = this.stateOf(sub.resource) ?? new Map<string, StateElement>();
    const next = this.partial.next(sub, m, (id) => `<contact id="${id}" state="terminated" event="unregistered"><uri></uri></contact>`);
    const live = [...m.values()].some((e) => e.live);
    const state = live ? 'active' : next.state === 'full' ? 'init' : 'terminated';
    return { contentType: REGINFO_CONTENT_TYPE, body: buildRegInfo(sub.resource, sub.documentVersion++, next.state, state, next.elements) };
  }

  onRefresh(sub: Subscription): void {
    this.partial.reset(sub);
  }

  onRemoved(sub: Subscription): void {
    this.partial.reset(sub);
  }

  private element(b: Binding, event: ContactEvent, nowMs: number): StateElement {
    const live = b.reachable && (event === 'registered' || event === 'refreshed');
    return {
      live,
      xml: serializeContact({
        id: contactId(b),
        uri: b.contact,
        state: live ? 'active' : 'terminated',
        event,
        ...(live ? { expires: Math.max(0, Math.ceil((b.expiresAt - nowMs) / 1000)) } : {}),
        ...(b.q !== undefined ? { q: b.q } : {}),
        callId: b.callId,
        cseq: b.cseq,
      }),
    };
  }
}

function contactId(b: Binding): string {
  return stableId('c', `${b.aor}\u0000${b.key}`);
}

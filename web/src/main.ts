import { BuddyStore, toAor } from './buddies.js';
import { ComposingSender } from './is-composing.js';
import { BUDDY_LIST, MyLists } from './my-lists.js';
import { MyRooms, type RoomView } from './my-rooms.js';
import { MyRules } from './my-rules.js';
import type { BuddyPresence, MyStatus } from './pidf.js';
import { SipSession } from './sip-session.js';
import { WatcherList } from './winfo.js';

/** One line of a conversation; mine carry how the server took them. */
interface ChatLine {
  readonly from: 'me' | 'them';
  readonly text: string;
  readonly at: Date;
  delivery?: 'sending' | 'delivered' | 'stored' | 'failed';
  failure?: string;
}

interface Buddy {
  readonly aor: string;
  presence: BuddyPresence;
  subscription: 'pending' | 'active' | 'terminated' | 'refused' | 'new';
  lines: ChatLine[];
  unread: number;
  composing: boolean;
  composingTimer?: ReturnType<typeof setTimeout>;
  sender?: ComposingSender;
}

/** A chat room the user is in: its last view from the server and the conversation. */
interface Room {
  view: RoomView;
  lines: ChatLine[];
  unread: number;
}

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: { className?: string; text?: string; title?: string } = {}, ...children: Node[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.className) e.className = props.className;
  if (props.text !== undefined) e.textContent = props.text;
  if (props.title) e.title = props.title;
  for (const c of children) e.append(c);
  return e;
}

function shortName(aor: string): string {
  return aor.replace(/^sips?:/, '');
}

const STATUS_LABEL: Record<string, string> = {
  available: 'Available',
  away: 'Away',
  busy: 'Busy',
  offline: 'Offline',
  unknown: 'Unknown',
  refused: 'Does not share a status with you',
};

/** What a buddy's entry shows: waiting for approval, refused, or the published status. */
function statusOf(b: Buddy): { status: string; label: string } {
  const status = b.subscription === 'pending' || b.subscription === 'refused' ? b.subscription : b.presence.status;
  return { status, label: status === 'pending' ? 'Waiting for approval' : STATUS_LABEL[status] ?? status };
}

class App {
  private session?: SipSession;
  private rules?: MyRules;
  /** The buddy list on the server (RFC 4826 list, served as sip:<me>+presence@<domain>). */
  private lists?: MyLists;
  /** Who is on the buddy list (others appear for a conversation only). */
  private readonly listed = new Set<string>();
  private myRooms?: MyRooms;
  private readonly rooms = new Map<string, Room>();
  private domain = 'localhost';
  private readonly buddies = new Map<string, Buddy>();
  private readonly watchers = new WatcherList();
  private current?: string;

  async init(): Promise<void> {
    const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
    $<HTMLInputElement>('login-server').value = wsUrl;
    try {
      const res = await fetch('/client-config.json');
      if (res.ok) this.domain = ((await res.json()) as { domain: string }).domain;
    } catch {
      // The page still works: the user types the domain.
    }
    $<HTMLInputElement>('login-domain').value = this.domain;
    $<HTMLFormElement>('login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.login();
    });
    $<HTMLFormElement>('status-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.publish();
    });
    $<HTMLSelectElement>('my-status').addEventListener('change', () => void this.publish());
    $<HTMLButtonElement>('logout').addEventListener('click', () => void this.logout());
    $<HTMLFormElement>('add-buddy').addEventListener('submit', (e) => {
      e.preventDefault();
      this.addBuddy($<HTMLInputElement>('add-buddy-input').value);
    });
    $<HTMLFormElement>('compose').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.send();
    });
    $<HTMLInputElement>('compose-text').addEventListener('input', () => {
      if (this.current && !this.rooms.has(this.current) && $<HTMLInputElement>('compose-text').value) this.buddy(this.current).sender?.typed();
    });
    $<HTMLFormElement>('join-room').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.joinRoom($<HTMLInputElement>('join-room-input').value.trim());
    });
  }

  private async login(): Promise<void> {
    const user = $<HTMLInputElement>('login-user').value.trim();
    const password = $<HTMLInputElement>('login-password').value;
    const domain = $<HTMLInputElement>('login-domain').value.trim() || this.domain;
    const server = $<HTMLInputElement>('login-server').value.trim();
    const error = $('login-error');
    error.textContent = '';
    $<HTMLButtonElement>('login-button').disabled = true;
    this.domain = domain;
    const session = new SipSession(
      { user, domain, password, server },
      {
        presence: (aor, p) => this.onPresence(aor, p),
        subscriptionState: (aor, s, reason) => this.onSubscriptionState(aor, s, reason),
        message: (from, text) => this.onMessage(from, text),
        composing: (from, state, refreshS) => this.onComposing(from, state, refreshS),
        listMembers: (aors, full) => this.onListMembers(aors, full),
        winfo: (body) => {
          if (this.watchers.apply(body)) this.renderWatchers();
        },
        connection: (state) => {
          $('connection').textContent = state === 'reconnecting' ? 'reconnecting…' : state;
          $('connection').className = `connection ${state}`;
          document.body.dataset.connection = state;
        },
        publishFailed: (why) => {
          $('status-feedback').textContent = `not published: ${why}`;
          delete document.body.dataset.published;
        },
        publishAccepted: (status) => {
          $('status-feedback').textContent = 'published';
          document.body.dataset.published = status;
        },
      },
    );
    try {
      await session.start();
    } catch (err) {
      error.textContent = `Login failed: ${(err as Error).message}`;
      $<HTMLButtonElement>('login-button').disabled = false;
      await session.stop().catch(() => undefined);
      return;
    }
    this.session = session;
    this.rules = new MyRules(user, password);
    this.lists = new MyLists(user, password);
    this.myRooms = new MyRooms(user, password);
    $('me').textContent = shortName(session.aor);
    $('login').hidden = true;
    $('app').hidden = false;
    $('status-bar').hidden = false;
    document.body.dataset.loggedIn = 'true';
    await this.loadBuddies(session.aor);
    // One subscription for the whole list: the server holds it, so it is the same on every device.
    session.watchList(session.aor.replace(/^(sips?:[^@]+)@/, `$1+${BUDDY_LIST}@`));
    this.renderBuddies();
    await this.refreshRooms();
    await this.publish();
  }

  // ---- rooms (docs/messaging.md#rooms) ----------------------------------------------

  /** The rooms the user is in, as the server has them. */
  private async refreshRooms(): Promise<void> {
    if (!this.myRooms) return;
    try {
      const views = await this.myRooms.list();
      const now = new Set(views.map((v) => v.uri));
      for (const uri of [...this.rooms.keys()]) if (!now.has(uri)) this.rooms.delete(uri);
      for (const v of views) {
        const r = this.rooms.get(v.uri);
        if (r) r.view = v;
        else this.rooms.set(v.uri, { view: v, lines: [], unread: 0 });
      }
      $('room-error').textContent = '';
    } catch (err) {
      $('room-error').textContent = `rooms: ${(err as Error).message}`;
    }
    this.renderRooms();
    if (this.current && this.rooms.has(this.current)) this.renderChatHeader();
  }

  private async joinRoom(name: string): Promise<void> {
    if (!name || !this.myRooms) return;
    try {
      const view = await this.myRooms.join(name);
      $<HTMLInputElement>('join-room-input').value = '';
      if (!this.rooms.has(view.uri)) this.rooms.set(view.uri, { view, lines: [], unread: 0 });
      else this.rooms.get(view.uri)!.view = view;
      $('room-error').textContent = '';
      this.renderRooms();
      this.open(view.uri);
    } catch (err) {
      $('room-error').textContent = `not joined: ${(err as Error).message}`;
    }
  }

  private async leaveRoom(uri: string): Promise<void> {
    if (!this.myRooms) return;
    try {
      await this.myRooms.leave(shortName(uri).split('@')[0]!);
    } catch (err) {
      $('room-error').textContent = `not left: ${(err as Error).message}`;
      return;
    }
    this.rooms.delete(uri);
    if (this.current === uri) this.current = undefined;
    this.renderRooms();
    this.renderChat();
  }

  private renderRooms(): void {
    const list = $('room-list');
    list.replaceChildren();
    const all = [...this.rooms.values()].sort((a, b) => a.view.uri.localeCompare(b.view.uri));
    for (const r of all) {
      const li = el('li', { className: `buddy room${this.current === r.view.uri ? ' selected' : ''}` });
      li.dataset.room = r.view.uri;
      const main = el(
        'button',
        { className: 'buddy-open', title: `Chat in ${shortName(r.view.uri)}` },
        el('span', { className: 'buddy-name', text: `#${shortName(r.view.uri).split('@')[0]!}` }),
        el('span', { className: 'buddy-status', text: `${r.view.members.length} member${r.view.members.length === 1 ? '' : 's'}` }),
        el('span', { className: 'buddy-note', text: r.view.topic }),
      );
      if (r.unread > 0) main.append(el('span', { className: 'badge', text: String(r.unread) }));
      main.addEventListener('click', () => {
        this.open(r.view.uri);
        void this.refreshRooms();
      });
      const leave = el('button', { className: 'remove', text: '×', title: `Leave ${shortName(r.view.uri)}` });
      leave.addEventListener('click', () => void this.leaveRoom(r.view.uri));
      li.append(main, leave);
      list.append(li);
    }
    $('room-empty').hidden = all.length > 0;
  }

  private async logout(): Promise<void> {
    await this.session?.stop();
    location.reload();
  }

  private async publish(): Promise<void> {
    if (!this.session) return;
    const status = $<HTMLSelectElement>('my-status').value as MyStatus;
    const note = $<HTMLInputElement>('my-note').value.trim();
    const feedback = $('status-feedback');
    try {
      if (await this.session.publish(status, note)) {
        feedback.textContent = 'published';
        document.body.dataset.published = status;
      }
    } catch (err) {
      feedback.textContent = `not published: ${(err as Error).message}`;
    }
  }

  /** The buddy list from the server; one this browser kept before (localStorage) moves there once. */
  private async loadBuddies(aor: string): Promise<void> {
    let aors: string[] = [];
    try {
      aors = (await this.lists?.load()) ?? [];
      const legacy = new BuddyStore(aor);
      const old = legacy.load();
      if (aors.length === 0 && old.length > 0) {
        await this.lists?.save(old);
        aors = old;
      }
      legacy.clear();
    } catch (err) {
      $('status-feedback').textContent = `buddy list not loaded: ${(err as Error).message}`;
    }
    for (const a of aors) {
      this.listed.add(a);
      this.buddy(a).subscription = 'new';
    }
  }

  /** Saves the list; the server tells our list subscription, which shows the change. */
  private saveBuddies(): void {
    void this.lists?.save([...this.listed]).catch((err: Error) => {
      $('status-feedback').textContent = `buddy list not saved: ${err.message}`;
    });
  }

  /** A list NOTIFY: buddies another device added appear here too. */
  private onListMembers(aors: readonly string[], full: boolean): void {
    let changed = false;
    for (const a of aors) {
      if (this.listed.has(a)) continue;
      this.listed.add(a);
      this.buddy(a).subscription = 'new';
      changed = true;
    }
    if (full) {
      // Buddies removed on another device go here too (not those of a conversation only).
      const now = new Set(aors);
      for (const a of [...this.listed]) {
        if (now.has(a)) continue;
        this.listed.delete(a);
        this.buddies.delete(a);
        if (this.current === a) this.current = undefined;
        changed = true;
      }
    }
    if (changed) this.renderBuddies();
  }

  private addBuddy(text: string): void {
    const aor = toAor(text, this.domain);
    const input = $<HTMLInputElement>('add-buddy-input');
    if (!aor || !this.session) {
      input.setCustomValidity('a user name, user@domain or SIP URI');
      input.reportValidity();
      return;
    }
    input.setCustomValidity('');
    input.value = '';
    if (aor === this.session.aor || this.listed.has(aor)) return;
    this.listed.add(aor);
    const b = this.buddy(aor);
    if (b.subscription === 'terminated') b.subscription = 'new';
    this.saveBuddies();
    this.renderBuddies();
  }

  private removeBuddy(aor: string): void {
    this.listed.delete(aor);
    this.buddies.delete(aor);
    this.saveBuddies();
    if (this.current === aor) this.current = undefined;
    this.renderBuddies();
    this.renderChat();
  }

  private buddy(aor: string): Buddy {
    let b = this.buddies.get(aor);
    if (!b) {
      b = { aor, presence: { status: 'unknown', note: '' }, subscription: 'new', lines: [], unread: 0, composing: false };
      const session = this.session;
      b.sender = new ComposingSender((state) => session?.sendComposing(aor, state));
      this.buddies.set(aor, b);
    }
    return b;
  }

  private onPresence(aor: string, p: BuddyPresence): void {
    if (!this.buddies.has(aor)) return;
    this.buddy(aor).presence = p;
    this.renderBuddies();
    if (this.current === aor || (this.current && this.rooms.get(this.current)?.view.members.includes(aor))) this.renderChatHeader();
  }

  private onSubscriptionState(aor: string, s: 'pending' | 'active' | 'terminated', reason?: string): void {
    if (!this.buddies.has(aor)) return;
    const b = this.buddy(aor);
    // RFC 6665 §4.2.2: rejected means the buddy does not let us watch (the session does not retry).
    b.subscription = s === 'terminated' && reason === 'rejected' ? 'refused' : s;
    if (s === 'terminated') b.presence = { status: 'unknown', note: '' };
    this.renderBuddies();
    if (this.current === aor) this.renderChatHeader();
  }

  private onMessage(from: string, text: string): void {
    const room = this.rooms.get(from);
    if (room) {
      // The room's copy names the sender as a `nick: ` prefix (or is the room's own notice).
      room.lines.push({ from: 'them', text, at: new Date() });
      if (this.current !== from) room.unread++;
      this.renderRooms();
      if (this.current === from) this.renderChat();
      // Joins and leaves change the member list.
      if (text.startsWith('*** ')) void this.refreshRooms();
      return;
    }
    const b = this.buddy(from);
    if (!this.listed.has(from) && b.subscription === 'new') {
      // A message from someone not on the list: show the conversation, do not subscribe.
      b.subscription = 'terminated';
    }
    b.lines.push({ from: 'them', text, at: new Date() });
    // RFC 3994 §3.3: a received message ends the sender's composing state.
    this.setComposing(b, false);
    if (this.current !== from) b.unread++;
    this.renderBuddies();
    if (this.current === from) this.renderChat();
  }

  private onComposing(from: string, state: 'active' | 'idle', refreshS: number): void {
    // A room relays its members' typing without saying who: not shown.
    if (this.rooms.has(from)) return;
    const b = this.buddy(from);
    this.setComposing(b, state === 'active', refreshS);
    if (!this.current) this.renderBuddies();
  }

  private setComposing(b: Buddy, on: boolean, refreshS = 120): void {
    clearTimeout(b.composingTimer);
    b.composing = on;
    // RFC 3994 §4: no refresh within the interval means idle.
    if (on) b.composingTimer = setTimeout(() => this.setComposing(b, false), refreshS * 1000);
    if (this.current === b.aor) this.renderTyping();
    this.renderBuddies();
  }

  private async send(): Promise<void> {
    const input = $<HTMLInputElement>('compose-text');
    const text = input.value.trim();
    if (!text || !this.current || !this.session) return;
    const room = this.rooms.get(this.current);
    if (room) {
      input.value = '';
      const line: ChatLine = { from: 'me', text, at: new Date(), delivery: 'sending' };
      room.lines.push(line);
      this.renderChat();
      try {
        // RFC 3428 §7: the room answers 202 once it took the message for its members.
        await this.session.sendMessage(room.view.uri, text);
        line.delivery = 'delivered';
      } catch (err) {
        line.delivery = 'failed';
        line.failure = (err as Error).message;
      }
      if (this.current === room.view.uri) this.renderChat();
      return;
    }
    const b = this.buddy(this.current);
    input.value = '';
    b.sender?.stop(false);
    const line: ChatLine = { from: 'me', text, at: new Date(), delivery: 'sending' };
    b.lines.push(line);
    this.renderChat();
    try {
      line.delivery = await this.session.sendMessage(b.aor, text);
    } catch (err) {
      line.delivery = 'failed';
      line.failure = (err as Error).message;
    }
    if (this.current === b.aor) this.renderChat();
  }

  private open(aor: string): void {
    this.current = aor;
    const room = this.rooms.get(aor);
    if (room) room.unread = 0;
    else this.buddy(aor).unread = 0;
    this.renderBuddies();
    this.renderRooms();
    this.renderChat();
    $<HTMLInputElement>('compose-text').focus();
  }

  // ---- rendering -------------------------------------------------------------------

  private renderBuddies(): void {
    const list = $('buddy-list');
    list.replaceChildren();
    const all = [...this.buddies.values()].sort((a, b) => a.aor.localeCompare(b.aor));
    for (const b of all) {
      const { status, label } = statusOf(b);
      const li = el('li', { className: `buddy${this.current === b.aor ? ' selected' : ''}` });
      li.dataset.aor = b.aor;
      li.dataset.status = status;
      const main = el(
        'button',
        { className: 'buddy-open', title: `Chat with ${shortName(b.aor)}` },
        el('span', { className: `dot ${status}`, title: label }),
        el('span', { className: 'buddy-name', text: shortName(b.aor) }),
        el('span', { className: 'buddy-status', text: label }),
        el('span', { className: 'buddy-note', text: b.presence.note }),
      );
      if (b.unread > 0) main.append(el('span', { className: 'badge', text: String(b.unread) }));
      if (b.composing) main.append(el('span', { className: 'typing-mark', text: '…' }));
      main.addEventListener('click', () => this.open(b.aor));
      const remove = el('button', { className: 'remove', text: '×', title: `Remove ${shortName(b.aor)}` });
      remove.addEventListener('click', () => this.removeBuddy(b.aor));
      li.append(main, remove);
      list.append(li);
    }
    $('buddy-empty').hidden = all.length > 0;
  }

  private renderWatchers(): void {
    const list = $('watcher-list');
    list.replaceChildren();
    const shown = this.watchers.watchers().filter((w) => w.status === 'pending' || w.status === 'waiting' || w.status === 'active');
    for (const w of shown) {
      const li = el('li', { className: `watcher ${w.status}` });
      li.dataset.uri = w.uri;
      li.dataset.status = w.status;
      li.append(el('span', { className: 'watcher-name', text: shortName(w.uri) }), el('span', { className: 'watcher-state', text: w.status === 'active' ? 'sees you' : 'asks to see you' }));
      const decide = (action: 'allow' | 'block', button: HTMLButtonElement): void => {
        button.disabled = true;
        this.rules
          ?.set(w.uri, action)
          .then(() => {
            li.dataset.decided = action;
          })
          .catch((err: Error) => {
            button.disabled = false;
            li.title = err.message;
          });
      };
      if (w.status !== 'active') {
        const approve = el('button', { className: 'approve', text: 'Approve' });
        approve.addEventListener('click', () => decide('allow', approve));
        li.append(approve);
      }
      const block = el('button', { className: 'block', text: 'Block' });
      block.addEventListener('click', () => decide('block', block));
      li.append(block);
      list.append(li);
    }
    $('watcher-empty').hidden = shown.length > 0;
  }

  private renderChatHeader(): void {
    if (!this.current) return;
    const room = this.rooms.get(this.current);
    if (room) {
      $('chat-title').textContent = `#${shortName(room.view.uri).split('@')[0]!}`;
      // A member who is also a buddy is shown with the presence we watch anyway.
      const members = room.view.members
        .map((m) => {
          const name = shortName(m).split('@')[0]!;
          const b = this.buddies.get(m);
          return b && b.subscription === 'active' ? `${name} (${statusOf(b).label})` : name;
        })
        .join(', ');
      $('chat-status').textContent = [room.view.topic, `members: ${members}`].filter(Boolean).join(' — ');
      return;
    }
    const b = this.buddy(this.current);
    $('chat-title').textContent = shortName(b.aor);
    $('chat-status').textContent = [statusOf(b).label, b.presence.note].filter(Boolean).join(' — ');
  }

  private renderChat(): void {
    const empty = !this.current;
    $('chat-empty').hidden = !empty;
    $('chat-pane').hidden = empty;
    if (!this.current) return;
    this.renderChatHeader();
    const room = this.rooms.get(this.current);
    const b = room ? undefined : this.buddy(this.current);
    const lines = room ? room.lines : b!.lines;
    const list = $('messages');
    list.replaceChildren(
      ...lines.map((l) => {
        const li = el('li', { className: `line ${l.from}` }, el('span', { className: 'text', text: l.text }), el('time', { text: l.at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) }));
        if (l.delivery) {
          li.dataset.delivery = l.delivery;
          // RFC 3428 §7: 202 means the server took it for later, not that it arrived.
          const note = l.delivery === 'stored' && b ? `will be delivered when ${shortName(b.aor)} is online` : l.delivery === 'failed' ? `not delivered: ${l.failure ?? ''}` : '';
          if (note) li.append(el('span', { className: 'delivery', text: note }));
        }
        return li;
      }),
    );
    list.scrollTop = list.scrollHeight;
    this.renderTyping();
  }

  private renderTyping(): void {
    const t = $('typing');
    const b = this.current && !this.rooms.has(this.current) ? this.buddy(this.current) : undefined;
    t.textContent = b?.composing ? `${shortName(b.aor)} is typing…` : '';
    t.hidden = !b?.composing;
  }
}

void new App().init();

import type { Binding, BindingFlow } from './binding.js';
import type { RegisterAction } from './register-request.js';
import { ownOptional, ownString } from '../util/own-string.js';

export interface RegistrarSettings {
  readonly minExpires: number;
  readonly maxExpires: number;
  readonly defaultExpires: number;
  readonly maxContactsPerAor: number;
}

/** Everything about the REGISTER that goes into a binding besides its Contact. */
export interface RegisterContext {
  readonly aor: string;
  readonly callId: string;
  readonly cseq: number;
  readonly nowMs: number;
  readonly flow: BindingFlow;
  readonly path: readonly string[];
  readonly userAgent?: string;
}

export type RegistrationPlan =
  | {
      readonly ok: true;
      readonly put: readonly Binding[];
      readonly remove: readonly string[];
      /** The AoR's bindings once applied (what the 200 lists). */
      readonly result: readonly Binding[];
    }
  | {
      readonly ok: false;
      readonly status: number;
      readonly reason: string;
      readonly headers?: Array<[string, string | number]>;
    };

/**
 * RFC 3261 §10.3 steps 6 and 7 as a pure function of the AoR's current bindings and the
 * request: every contact is checked before anything changes, so a request that fails
 * leaves the bindings untouched.
 */
export function planRegistration(
  current: readonly Binding[],
  action: RegisterAction,
  ctx: RegisterContext,
  settings: RegistrarSettings,
): RegistrationPlan {
  const byKey = new Map(current.map((b) => [b.key, b] as const));
  if (action.kind === 'query') return { ok: true, put: [], remove: [], result: current };

  // §10.3 step 7: with the same Call-ID, only a higher CSeq may change a binding (an
  // older REGISTER arriving late must not undo a newer one).
  const outOfOrder = (b: Binding | undefined): boolean => b !== undefined && b.callId === ctx.callId && ctx.cseq <= b.cseq;
  const refuse: RegistrationPlan = { ok: false, status: 400, reason: 'Invalid CSeq Number' };

  if (action.kind === 'remove-all') {
    // §10.3 step 6: "*" removes every binding, subject to the same Call-ID/CSeq rule.
    if (current.some(outOfOrder)) return refuse;
    return { ok: true, put: [], remove: current.map((b) => b.key), result: [] };
  }

  // §10.2.1.1 / §10.3 step 6: a non-zero expiry below our minimum is refused with 423.
  if (action.contacts.some((c) => c.expires !== 0 && c.expires < settings.minExpires)) {
    return { ok: false, status: 423, reason: 'Interval Too Brief', headers: [['Min-Expires', settings.minExpires]] };
  }
  const put: Binding[] = [];
  const remove: string[] = [];
  for (const c of action.contacts) {
    const existing = byKey.get(c.key);
    if (outOfOrder(existing)) return refuse;
    if (c.expires === 0) {
      if (existing) {
        remove.push(c.key);
        byKey.delete(c.key);
      }
      continue;
    }
    // §10.3 step 7: the registrar may shorten a long expiry.
    const seconds = Math.min(c.expires, settings.maxExpires);
    const b: Binding = {
      // Kept as long as the binding: strings of their own, not slices of the REGISTER.
      aor: ownString(ctx.aor),
      key: ownString(c.key),
      contact: ownString(c.uri.raw),
      params: c.params,
      q: c.q,
      instanceId: c.instanceId,
      regId: c.regId,
      callId: ownString(ctx.callId),
      cseq: ctx.cseq,
      expiresAt: ctx.nowMs + seconds * 1000,
      updatedAt: ctx.nowMs,
      path: ctx.path.map(ownString),
      flow: ctx.flow,
      reachable: true,
      userAgent: ownOptional(ctx.userAgent),
    };
    put.push(b);
    byKey.set(c.key, b);
  }
  // Bounded per AoR (DESIGN): refused rather than evicting another device's binding.
  if (byKey.size > settings.maxContactsPerAor) return { ok: false, status: 403, reason: 'Too Many Contacts' };
  return { ok: true, put, remove, result: [...byKey.values()] };
}

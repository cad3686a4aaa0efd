/**
 * Client roles of SIMPLE on our own SIP stack: a presence user agent that publishes, a
 * watcher that subscribes, a pager that sends and receives MESSAGEs, and the Registration
 * that keeps the pager reachable. Each is built on one UserAgent (socket, transactions,
 * digest authentication).
 */
export { UserAgent, USER_AGENT_HEADER, type ClientTransport, type ServerAddress, type UserAgentOptions, type RequestHandler, type RequestAnswer, type Exchange } from './user-agent.js';
export { Registration, type RegistrationOptions, type RegistrationEvents } from './registration.js';
export { Pager, type IncomingMessage, type SendResult, type PagerEvents } from './pager.js';
export { PresenceUserAgent, PIDF_CONTENT_TYPE, type Publication, type PresenceUserAgentOptions, type PresenceUserAgentEvents } from './presence-user-agent.js';
export { WatcherUserAgent, type WatcherUserAgentOptions, type WatcherUserAgentEvents } from './watcher-user-agent.js';
export { STATE_EVENTS, STATE_ACCEPT, summarizeEventState, type StateEvent, type EventStateUpdate } from './event-state.js';
export {
  ClientSubscription,
  parseSubscriptionState,
  resubscribePolicy,
  type ClientSubscriptionEvents,
  type ListResourceUpdate,
  type ListUpdate,
  type PresenceUpdate,
  type SubscriptionStatus,
  type SubscriptionStateHeader,
  type WatchedEvent,
} from './client-subscription.js';
export { buildPidf, stateFromStatus, RPID_ACTIVITIES, type PresenceState } from './presence-state.js';
export { SipRequestError, hintFor } from './errors.js';
export { TypedEmitter, type EventMap } from './emitter.js';
export { DigestSession, authorizationValue, chooseChallenge, parseChallenge, digestResponse, type DigestChallenge, type DigestCredentials, type DigestAlgorithmName } from './digest-client.js';
export { refreshDelayMs } from './refresh.js';

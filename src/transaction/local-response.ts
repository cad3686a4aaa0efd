import type { SipRequest, SipResponse } from '../sip/message.js';
import { createResponse } from '../sip/response.js';

/**
 * A response made up here for a client transaction that got none (§8.1.3.1: a timeout is
 * treated as a 408, a transport failure as a 503). The To header stays as in the request:
 * no remote party answered, so no To tag is invented.
 */
export function localResponse(req: SipRequest, status: number, reason: string): SipResponse {
  const res = createResponse(req, status, reason);
  const to = req.getHeader('to');
  if (to !== undefined) res.setHeader('To', to);
  return res;
}

export const TIMEOUT_REASON = 'Request Timeout';
export const TRANSPORT_ERROR_REASON = 'Transport Error';

import { expect } from 'chai';
import { authorization, parseChallenge } from '../auth/digest-client.js';

/** The XCAP root the test servers serve (xcap.root's default). */
export const ROOT = '/xcap-root';

export interface XcapAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/** One XCAP request with HTTP digest (RFC 7616): challenged first, then answered with the SIP password. */
export async function xcap(
  base: string,
  method: string,
  path: string,
  o: { user?: string; password?: string; body?: string; type?: string; headers?: Record<string, string>; algorithm?: 'SHA-256' | 'MD5'; token?: string } = {},
): Promise<XcapAnswer> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.body !== undefined) headers['Content-Type'] = o.type ?? 'application/xml';
  const url = base + ROOT + path;
  const uri = new URL(url).pathname + new URL(url).search;
  if (o.token) headers.Authorization = `Bearer ${o.token}`;
  else if (o.user) {
    const first = await fetch(url, { method: 'GET' });
    await first.text();
    expect(first.status).to.equal(401);
    const challenges = first.headers.get('www-authenticate')!.split(/,\s*(?=Digest )/).map(parseChallenge);
    const c = challenges.find((x) => x.algorithm === (o.algorithm ?? 'SHA-256'))!;
    headers.Authorization = authorization(c, { username: o.user, password: o.password ?? `${o.user}-pass`, method, uri });
  }
  const res = await fetch(url, { method, headers, ...(o.body !== undefined ? { body: o.body } : {}) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

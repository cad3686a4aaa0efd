import { escapeText } from '../../presence/pidf/xml-escape.js';
import type { ApplicationUsage } from '../application-usage.js';

/** RFC 4825 §12.1: the server's capabilities as a global document. */
export const XCAP_CAPS_NS = 'urn:ietf:params:xml:ns:xcap-caps';
export const XCAP_CAPS_TYPE = 'application/xcap-caps+xml';

/**
 * `xcap-caps` (RFC 4825 §12): `global/index` lists the auids and namespaces served, read
 * only. Blink fetches it first and picks the OMA pres-rules variant when it is listed.
 */
export function xcapCapsUsage(served: () => readonly ApplicationUsage[]): ApplicationUsage {
  const render = (): Buffer => {
    const usages = served();
    const auids = usages.map((u) => `    <auid>${escapeText(u.auid)}</auid>\n`).join('');
    const namespaces = [...new Set(usages.flatMap((u) => u.namespaces))].map((n) => `    <namespace>${escapeText(n)}</namespace>\n`).join('');
    return Buffer.from(
      `<?xml version="1.0" encoding="UTF-8"?>\n<xcap-caps xmlns="${XCAP_CAPS_NS}">\n  <auids>\n${auids}  </auids>\n  <extensions/>\n  <namespaces>\n${namespaces}  </namespaces>\n</xcap-caps>\n`,
      'utf8',
    );
  };
  return {
    auid: 'xcap-caps',
    mimeType: XCAP_CAPS_TYPE,
    defaultNamespace: XCAP_CAPS_NS,
    namespaces: [XCAP_CAPS_NS],
    writable: false,
    acceptsPath: (scope, path) => scope === 'global' && path.length === 1 && path[0] === 'index',
    validate: () => undefined,
    source: {
      read: async () => render(),
      write: async () => undefined,
      remove: async () => false,
    },
  };
}

import { parsePidf } from '../../presence/pidf/index.js';
import { writeXml } from '../xml-writer.js';
import type { ApplicationUsage } from '../application-usage.js';
import { XcapConflict } from '../xcap-error.js';

export const PIDF_MANIPULATION_AUID = 'pidf-manipulation';
const PIDF_NS = 'urn:ietf:params:xml:ns:pidf';

/**
 * `pidf-manipulation` (RFC 4827): the user's hard state, a PIDF document at
 * `users/<xui>/index`, stored by the engine and composed with the devices' publications
 * (src/presence/presence-documents.ts setHardState: the hard state counts as the oldest
 * publication). Validation is the PIDF reader PUBLISH uses, with its limits.
 */
export function pidfManipulationUsage(options: {
  readonly maxDocumentBytes: number;
  /** The hard state of `owner` changed (undefined: deleted); false when the service refused it. */
  readonly hardStateChanged: (owner: string, bytes: Buffer | undefined) => boolean;
}): ApplicationUsage {
  return {
    auid: PIDF_MANIPULATION_AUID,
    mimeType: 'application/pidf+xml',
    defaultNamespace: PIDF_NS,
    namespaces: [PIDF_NS, 'urn:ietf:params:xml:ns:pidf:data-model', 'urn:ietf:params:xml:ns:pidf:rpid'],
    writable: true,
    acceptsPath: (scope, path) => scope === 'users' && path.length === 1 && path[0] === 'index',
    validate: (root) => {
      if (root.ns !== PIDF_NS || root.local !== 'presence') throw new XcapConflict({ kind: 'schema-validation-error', phrase: 'the root element must be <presence> of urn:ietf:params:xml:ns:pidf' });
      const r = parsePidf(Buffer.from(writeXml(root), 'utf8'), { maxBytes: options.maxDocumentBytes });
      if (!r.ok) throw new XcapConflict({ kind: 'schema-validation-error', phrase: r.reason });
    },
    changed: (doc, bytes) => {
      options.hardStateChanged(doc.owner, bytes);
    },
  };
}

import { escapeAttribute } from '../../presence/pidf/xml-escape.js';
import type { ApplicationUsage } from '../application-usage.js';

/** OMA XDM xcap-directory: a user's documents, listed by application usage. */
export const XCAP_DIRECTORY_AUID = 'org.openmobilealliance.xcap-directory';
export const XCAP_DIRECTORY_NS = 'urn:oma:xml:xdm:xcap-directory';
export const XCAP_DIRECTORY_TYPE = 'application/vnd.oma.xcap-directory+xml';

/**
 * `org.openmobilealliance.xcap-directory` (OMA XDM): `users/<xui>/directory.xml` lists the
 * user's documents, a `<folder auid>` for each usage with a user tree and an `<entry uri etag>`
 * for each document it has; read only, made from what xcap-diff also reads.
 */
export function xcapDirectoryUsage(options: {
  /** The user's documents: selector relative to the root (`auid/users/xui/path`) to entity-tag. */
  readonly documentsOf: (owner: string) => Promise<ReadonlyMap<string, string>>;
  /** The auids with user trees, in the order listed. */
  readonly auids: () => readonly string[];
  /** The absolute XCAP root URI the entries are under. */
  readonly rootUri: () => string;
}): ApplicationUsage {
  return {
    auid: XCAP_DIRECTORY_AUID,
    mimeType: XCAP_DIRECTORY_TYPE,
    defaultNamespace: XCAP_DIRECTORY_NS,
    namespaces: [XCAP_DIRECTORY_NS],
    writable: false,
    acceptsPath: (scope, path) => scope === 'users' && path.length === 1 && path[0] === 'directory.xml',
    validate: () => undefined,
    source: {
      read: async (doc) => {
        const docs = await options.documentsOf(doc.owner);
        const root = options.rootUri().replace(/\/+$/, '');
        const out = [`<?xml version="1.0" encoding="UTF-8"?>\n<xcap-directory xmlns="${XCAP_DIRECTORY_NS}">\n`];
        for (const auid of options.auids()) {
          const entries = [...docs].filter(([sel]) => sel.startsWith(`${auid}/users/`));
          if (entries.length === 0) {
            out.push(`  <folder auid="${escapeAttribute(auid)}"/>\n`);
            continue;
          }
          out.push(`  <folder auid="${escapeAttribute(auid)}">\n`);
          for (const [sel, etag] of entries) out.push(`    <entry uri="${escapeAttribute(`${root}/${sel}`)}" etag="${escapeAttribute(etag.replace(/^"|"$/g, ''))}"/>\n`);
          out.push('  </folder>\n');
        }
        out.push('</xcap-directory>\n');
        return Buffer.from(out.join(''), 'utf8');
      },
      write: async () => undefined,
      remove: async () => false,
    },
  };
}

import os from 'node:os';

/**
 * The domains this server is authoritative for: the configured SIP domain, `localhost`,
 * and the addresses it listens on (every interface address when it listens on a wildcard).
 */
export class LocalDomains {
  private readonly names = new Set<string>();

  constructor(readonly primary: string, listenHosts: readonly string[], advertised?: string | null) {
    this.add(primary);
    this.add('localhost');
    if (advertised) this.add(advertised);
    for (const h of listenHosts) {
      if (h === '0.0.0.0' || h === '::' || h === '') {
        for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) this.add(a.address);
      } else this.add(h);
    }
  }

  add(host: string): void {
    this.names.add(normalize(host));
  }

  has(host: string): boolean {
    // Most hosts arrive as they are kept (an address, a lower-case name): asked first, no copy made.
    return this.names.has(host) || this.names.has(normalize(host));
  }
}

/** RFC 3261 §19.1.4: hosts compare case-insensitively; an IPv6 reference loses its brackets. */
function normalize(host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

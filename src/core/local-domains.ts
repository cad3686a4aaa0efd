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
    const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
    this.names.add(h);
  }

  has(host: string): boolean {
    return this.names.has(host.toLowerCase().replace(/^\[(.*)\]$/, '$1'));
  }
}

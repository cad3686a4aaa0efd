import { spawn } from 'node:child_process';

/**
 * Readiness and stop notices for systemd (a unit with `Type=notify` and `NotifyAccess=all`,
 * docs/install.md). Node.js has no AF_UNIX datagram sockets, so the notice goes through
 * systemd's own `systemd-notify`, naming this process as the main one. Without NOTIFY_SOCKET
 * (not started by systemd) nothing happens; a missing tool is logged by the caller, never fatal.
 */
export function notifySystemd(state: 'ready' | 'stopping', status: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!env.NOTIFY_SOCKET) return Promise.resolve();
  // Plain assignments (sd_notify(3)) rather than --ready: Debian 12's systemd-notify has no --stopping.
  const args = [`--pid=${process.pid}`, state === 'ready' ? 'READY=1' : 'STOPPING=1', `STATUS=${status}`];
  return new Promise((resolve, reject) => {
    const child = spawn('systemd-notify', args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()).length > 4096 && (stderr = stderr.slice(-4096)));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`systemd-notify ${args[1]}: exit ${code} ${stderr.trim()}`))));
  });
}

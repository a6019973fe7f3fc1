/**
 * The addresses a person can open the editor at. A server bound to a wildcard address (0.0.0.0, ::)
 * is reached through this machine's network addresses, not the wildcard; a server with a token is
 * opened once as `/?token=…` (the page keeps the token for its session).
 */
import { networkInterfaces } from 'node:os';

const WILDCARD = new Set(['0.0.0.0', '::', '[::]']);

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/** Non-internal IPv4 addresses of this machine, then IPv6 ones (link-local left out). */
export function machineAddresses(): string[] {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv4') v4.push(a.address);
      else if (!a.address.toLowerCase().startsWith('fe80')) v6.push(`[${a.address}]`);
    }
  }
  return [...v4, ...v6];
}

/**
 * The URLs to print for a server listening at `boundUrl` (as `listen()` returns it): the first is the
 * one to open from another machine (or this one, when bound to loopback), each with `/?token=` when a
 * token is set, else the bare origin (so `${url}/prompt` works in scripts). A wildcard bind lists every network address of the machine, then localhost.
 */
export function editorUrls(boundUrl: string, token?: string, addresses = machineAddresses()): string[] {
  const u = new URL(boundUrl);
  const hosts = WILDCARD.has(hostOf(u)) || WILDCARD.has(u.hostname) ? [...addresses, 'localhost'] : [u.hostname];
  return hosts.map((h) => {
    const v = new URL(boundUrl);
    v.hostname = h;
    v.pathname = '/';
    if (!token) return v.origin;
    v.searchParams.set('token', token);
    return v.href;
  });
}

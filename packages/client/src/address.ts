import { wireLimits } from '@veritydb/wire';

/** A TCP endpoint. `host` has no brackets (an IPv6 literal is `::1`, written `[::1]:7420`). */
export interface Address {
  readonly host: string;
  readonly port: number;
}

export type ParsedAddress = { readonly ok: true; readonly address: Address } | { readonly ok: false; readonly reason: string };

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;
const PORT = /^\d{1,5}$/;

/**
 * Parses "HOST:PORT" ("127.0.0.1:7420", "db.example:7420", "[::1]:7420"). Port 0 is accepted
 * (listen on any free port); callers that connect must refuse it themselves.
 *
 * @example parseAddress('127.0.0.1:7420') // { ok: true, address: { host: '127.0.0.1', port: 7420 } }
 */
export function parseAddress(text: string): ParsedAddress {
  if (text.length === 0 || new TextEncoder().encode(text).length > wireLimits.addressBytesMax) {
    return { ok: false, reason: `"${text}" is not HOST:PORT (1 to ${wireLimits.addressBytesMax} bytes)` };
  }
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return { ok: false, reason: `"${text}" is not [IPV6]:PORT` };
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!IPV6.test(host) || !host.includes(':')) return { ok: false, reason: `"${host}" is not an IPv6 address` };
  } else {
    const colon = text.lastIndexOf(':');
    if (colon <= 0) return { ok: false, reason: `"${text}" is not HOST:PORT (a port is required)` };
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (!HOSTNAME.test(host)) return { ok: false, reason: `"${host}" is not a host name or IPv4 address` };
  }
  if (!PORT.test(portText)) return { ok: false, reason: `"${portText}" is not a port number (0-65535)` };
  const port = Number(portText);
  if (port > 65535) return { ok: false, reason: `port ${port} is above 65535` };
  return { ok: true, address: { host, port } };
}

/** "host:port", bracketing IPv6 literals. */
export function formatAddress(address: Address): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

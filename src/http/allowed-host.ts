// Which `Host:` a request to the agent's API may name. A web page cannot read the agent across
// origins, but with DNS rebinding it can: a name the attacker controls first resolves to their server
// and then to 127.0.0.1, and the browser sends the page's requests, with `Host: that-name`, to the
// agent on loopback (so /v1/status and /metrics would be read from any page its operator opens). A
// rebound request always names the attacker's host, so the agent answers only requests that name it:
// an IP address (a client that connected by address needs no name), `localhost` and `*.localhost`
// (RFC 6761, loopback wherever resolved), this machine's hostname, the listen address's name, and
// the names in `http.allowedHosts` (`.example.com` also allows every name under it). The same rule
// as webpack-dev-server's `allowedHosts: 'auto'`.
import { isIP } from 'node:net'

/** the name a Host header carries: port and IPv6 brackets off, lower case, no trailing dot; '' when malformed */
export function hostName(header: string): string {
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/i.exec(header)
  if (bracketed) return bracketed[1].toLowerCase()
  const plain = /^([^:[\]/@\s]+)(?::\d{1,5})?$/.exec(header)
  return plain ? plain[1].toLowerCase().replace(/\.$/, '') : ''
}

/**
 * A check for the Host header of each request. `names`: this machine's and the listen address's
 * names and `http.allowedHosts` (a leading dot: that domain and every name under it).
 */
export function allowedHostCheck(names: string[]): (header: string | undefined) => boolean {
  const exact = new Set<string>()
  const suffixes: string[] = []
  for (const raw of names) {
    const name = raw.toLowerCase().replace(/\.$/, '')
    if (!name) continue
    if (name.startsWith('.')) suffixes.push(name)
    else exact.add(name)
  }
  return (header) => {
    // HTTP/1.0 without a Host: not a browser's request (Node refuses HTTP/1.1 without one)
    if (header === undefined) return true
    const name = hostName(header)
    if (!name) return false
    if (isIP(name) !== 0) return true
    if (name === 'localhost' || name.endsWith('.localhost')) return true
    if (exact.has(name)) return true
    return suffixes.some((s) => name.endsWith(s) || name === s.slice(1))
  }
}

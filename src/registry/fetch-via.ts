// The one request the registry client makes: Node's own fetch, or, for a registry dockerd reaches
// with its TLS unchecked (an insecure registry over https), nodeFetch with redirects followed by hand.
import { nodeFetch } from '../node-fetch.js'

export type FetchInit = {
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: URLSearchParams
  signal: AbortSignal
}

/** a request through Node's own fetch, or over TLS left unchecked (an insecure registry) */
export async function fetchVia(url: string | URL, init: FetchInit, insecureTls = false): Promise<Response> {
  if (!insecureTls) return fetch(url, init)
  // Redirects are followed as fetch follows them (registries send blob reads to their storage). Only
  // the registry's own origin is reached with its TLS unchecked: another one is fetched with TLS
  // checked and without the registry's credentials.
  let target = new URL(url)
  const origin = target.origin
  for (let hops = 0; ; hops++) {
    const res = await nodeFetch(target, { ...init, rejectUnauthorized: false })
    const location = REDIRECTS.has(res.status) ? res.headers.get('location') : null
    if (location === null || init.method === 'POST') return res
    await res.body?.cancel()
    if (hops >= MAX_REDIRECTS) throw new TypeError(`fetch failed: more than ${MAX_REDIRECTS} redirects from ${origin}`)
    target = new URL(location, target)
    if (target.origin !== origin) {
      const { authorization: _dropped, ...headers } = init.headers ?? {}
      return fetch(target, { ...init, headers })
    }
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])
/** as fetch's own limit */
const MAX_REDIRECTS = 20

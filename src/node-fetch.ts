// fetch for the requests Node's own fetch cannot make: TLS checked against a CA of our own (a fleet's
// peers, peers.tls.caFile), TLS left unchecked (an insecure registry, tried over https first as
// dockerd does), and a connection made only to the addresses a `lookup` of ours allows (a peer, so a
// name that resolves to loopback is refused when it is resolved, rebinding included). node:http(s)
// under a WHATWG Response, so callers read the answer as they read fetch's. No redirect is followed:
// a 3xx comes back as it is. Transport failures are TypeErrors with the cause, as fetch's are; an
// abort is the signal's AbortError.
import { type IncomingMessage, request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { LookupFunction } from 'node:net'
import { Readable } from 'node:stream'

export interface NodeFetchInit {
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string | URLSearchParams
  signal?: AbortSignal
  /** the CAs a server's certificate must chain to (default: Node's bundled roots) */
  ca?: Buffer
  /** false: any certificate, as for an insecure registry */
  rejectUnauthorized?: boolean
  /** resolves the URL's hostname when the connection is made (default: the system's), on a connection
   * of this request's own; an IP literal is connected to as written, without a lookup, so a caller
   * that limits addresses checks literals itself */
  lookup?: LookupFunction
}

/** statuses whose Response must carry no body */
const NULL_BODY = new Set([101, 204, 205, 304])

export function nodeFetch(url: string | URL, init: NodeFetchInit = {}): Promise<Response> {
  const target = new URL(url)
  if (target.protocol !== 'https:' && target.protocol !== 'http:')
    return Promise.reject(new TypeError(`nodeFetch: not an http(s) URL: ${target.protocol}`))
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest
  const headers: Record<string, string> = { ...init.headers }
  let body: Buffer | undefined
  if (init.body !== undefined) {
    if (init.body instanceof URLSearchParams)
      headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8'
    body = Buffer.from(String(init.body))
    headers['content-length'] = String(body.length)
  }
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: init.method ?? 'GET',
        headers,
        ca: init.ca,
        rejectUnauthorized: init.rejectUnauthorized ?? true,
        signal: init.signal,
        // a connection of its own: a pooled socket would skip the lookup (its address was checked, or
        // not, by whichever request opened it)
        ...(init.lookup ? { lookup: init.lookup, agent: false } : {}),
      },
      (res) => {
        // Whatever the server sent that a Response cannot carry fails this request, never the process.
        try {
          resolve(toResponse(res))
        } catch (err) {
          res.destroy()
          reject(new TypeError(`fetch failed: ${target.origin} sent an answer fetch cannot carry`, { cause: err }))
        }
      },
    )
    req.on('error', (err) => reject(err.name === 'AbortError' ? err : new TypeError('fetch failed', { cause: err })))
    req.end(body)
  })
}

/** the answer as fetch gives it; the reason phrase is left out (a Response refuses some a server may send) */
function toResponse(res: IncomingMessage): Response {
  const status = res.statusCode ?? 0
  if (status < 200 || status > 599) throw new RangeError(`status ${status}`)
  const headers = new Headers()
  for (const [name, value] of Object.entries(res.headers)) for (const v of [value ?? []].flat()) headers.append(name, v)
  if (NULL_BODY.has(status)) {
    res.resume()
    return new Response(null, { status, headers })
  }
  return new Response(Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>, { status, headers })
}

// The Docker Engine API over dockerd's unix socket, on Node's own http client: JSON calls, and
// streams for what the daemon answers line by line (pull progress, events) or as an archive (image
// save and load). Every path carries the API version negotiated with the daemon. A failed call keeps
// the HTTP status (`statusCode`) and the daemon's own `{"message": …}` (`json`); a socket error
// (refused, missing socket, reset, silent past the idle timeout) passes with its errno code, which is
// how callers tell an unreachable daemon from a refusal.
import { Agent, request, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'
import { addAbortSignal, type Readable } from 'node:stream'

/** a query value: a list repeats its key; an object (filters) is sent as JSON, as the API wants */
export type QueryValue = string | number | boolean | readonly string[] | Record<string, unknown> | null | undefined

export interface EngineRequest {
  method?: 'GET' | 'POST' | 'DELETE'
  /** the API path without its version prefix, e.g. /images/json */
  path: string
  query?: Record<string, QueryValue>
  headers?: OutgoingHttpHeaders
  /** a request body streamed as is (an image archive) */
  upload?: Readable
  signal?: AbortSignal
  /** false for /version, which answers under every API version */
  versioned?: boolean
  /** silence on the socket that fails the call; 0: none. Defaults to the client's. */
  idleTimeoutMs?: number
}

/** an answer outside 2xx, with its status and the daemon's message as it sent it */
export class EngineApiError extends Error {
  override readonly name = 'EngineApiError'
  constructor(
    readonly statusCode: number,
    /** the parsed body: dockerd answers {"message": "…"} */
    readonly json: { message?: unknown } | undefined,
    message: string,
  ) {
    super(message)
  }
}

/** Pure: the error for a non-2xx answer and its body. */
export function engineError(statusCode: number, body: string): EngineApiError {
  let json: { message?: unknown } | undefined
  try {
    const parsed: unknown = JSON.parse(body)
    if (parsed && typeof parsed === 'object') json = parsed as { message?: unknown }
  } catch {
    // not JSON: a proxy or a daemon that answered text
  }
  const message = typeof json?.message === 'string' ? json.message : body.trim() || `HTTP ${statusCode}`
  return new EngineApiError(statusCode, json, message)
}

/** Pure: the query string (with its `?`, or empty); undefined and null values are left out. */
export function engineQuery(query: Record<string, QueryValue> = {}): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue
    if (Array.isArray(value)) for (const v of value as readonly string[]) params.append(key, v)
    else if (typeof value === 'object') params.append(key, JSON.stringify(value))
    else params.append(key, String(value))
  }
  const text = params.toString()
  return text ? `?${text}` : ''
}

/** Pure: the request path, under /vX.Y when a version is given. */
export function enginePath(apiVersion: string | undefined, path: string, query?: Record<string, QueryValue>): string {
  return `${apiVersion ? `/v${apiVersion}` : ''}${path}${engineQuery(query)}`
}

/**
 * Pure: an image name, container id or volume name as one path part. The API routes names with
 * their slashes, colons and @ (`/images/reg:5000/a/b@sha256:…/json`), so those stay; anything
 * else that is not plain (`?`, `#`, `%`, spaces) is escaped and cannot reach another route.
 */
export function pathPart(name: string): string {
  return encodeURIComponent(name).replace(/%2F/gi, '/').replace(/%3A/gi, ':').replace(/%40/gi, '@')
}

/**
 * Pure: the X-Registry-Auth header: the auth config as JSON in URL-safe base64 with its padding,
 * which dockerd's decoder (Go's base64.URLEncoding) requires: without it the credentials are lost.
 */
export function registryAuthHeader(auth: Record<string, string>): string {
  return Buffer.from(JSON.stringify(auth)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_')
}

export class EngineApi {
  /** the negotiated API version (e.g. 1.43); unset until then, and paths go unprefixed */
  apiVersion: string | undefined
  /** kept-alive sockets: calls come in bursts (a refresh lists images and containers together) */
  private readonly agent = new Agent({ keepAlive: true })

  constructor(
    readonly socketPath: string,
    /** silence on the socket that fails a call; 0: none */
    private readonly idleTimeoutMs: number,
  ) {}

  /** a call answered in JSON (undefined for an empty answer; text that is not JSON as it came) */
  async json<T>(req: EngineRequest): Promise<T> {
    const res = await this.stream(req)
    const body = await readBody(res)
    if (body.length === 0) return undefined as T
    try {
      return JSON.parse(body) as T
    } catch {
      return body as T
    }
  }

  /** a call whose answer is read as it comes; a non-2xx answer is read whole and thrown */
  stream(req: EngineRequest): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const timeoutMs = req.idleTimeoutMs ?? this.idleTimeoutMs
      const path = enginePath(req.versioned === false ? undefined : this.apiVersion, req.path, req.query)
      const r: ClientRequest = request({
        socketPath: this.socketPath,
        agent: this.agent,
        method: req.method ?? 'GET',
        path,
        headers: { Host: 'docker', ...(req.upload ? { 'Content-Type': 'application/x-tar' } : {}), ...req.headers },
        signal: req.signal,
      })
      let response: IncomingMessage | undefined
      if (timeoutMs > 0) {
        r.setTimeout(timeoutMs, () => {
          const err = new Error(`dockerd sent nothing for ${timeoutMs / 1000} s (timeout) on ${req.path}`)
          Object.assign(err, { code: 'ETIMEDOUT' })
          // Silence mid-answer fails the answer's reader with this error, not a bare "aborted".
          if (response) response.destroy(err)
          else r.destroy(err)
        })
      }
      r.once('error', reject)
      r.once('response', (res) => {
        response = res
        // The request's signal ends the call until the answer starts; from then on it ends the answer.
        if (req.signal) addAbortSignal(req.signal, res)
        const status = res.statusCode ?? 0
        if (status >= 200 && status < 300) return resolve(res)
        readBody(res).then((body) => reject(engineError(status, body)), reject)
      })
      if (req.upload) {
        req.upload.once('error', (err) => r.destroy(err))
        req.upload.pipe(r)
      } else {
        r.end()
      }
    })
  }

  /** closes the idle kept-alive sockets */
  close(): void {
    this.agent.destroy()
  }
}

async function readBody(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of res) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

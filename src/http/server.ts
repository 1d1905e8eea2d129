// A small HTTP server: exact-path routes, JSON bodies with a size limit, bearer auth for every POST.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { checkBearer } from './auth.js'
import { InvalidRequestError, UnavailableError } from '../errors.js'

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** the answer to an error the route's code threw on purpose; null for a bug (500, logged) */
function statusOf(err: unknown): number | null {
  if (err instanceof HttpError) return err.status
  if (err instanceof InvalidRequestError) return 400
  if (err instanceof UnavailableError) return 503
  return null
}

export interface Reply {
  status: number
  body: unknown
  contentType?: string
}

export interface Request {
  method: string
  path: string
  params: Record<string, string>
  query: URLSearchParams
  headers: IncomingMessage['headers']
  /** parsed JSON body (POST only); undefined when the body was empty */
  body: unknown
}

type Handler = (req: Request) => Promise<Reply> | Reply
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

interface Route {
  method: 'GET' | 'POST' | 'DELETE'
  pattern: RegExp
  keys: string[]
  auth: boolean
  handler: Handler
}

export interface HttpServerOptions {
  listen: string
  /** the bearer token for writes; null refuses every authenticated route with 403 */
  token: () => string | null
  /** GETs that need the token too (the coordinator's API) */
  authenticateReads?: boolean
  /** the largest request body read; larger answers 413 */
  maxBodyBytes: number
  /**
   * A body not fully received this long after the headers is cut (408, connection closed), so a
   * client trickling bytes cannot hold a connection for Node's default of five minutes.
   */
  bodyTimeoutMs?: number
  log: Logger
  name?: string
  /** authenticate every request before its path is looked up, except on routes registered open */
  authenticateBeforeRouting?: boolean
  /** serve HTTPS; with `ca`, clients may present a certificate signed by it (checked by the caller) */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer } | null
  /** the `Host:` headers served; any other answers 421 before anything else (src/http/allowed-host.ts) */
  allowedHost?: { check(header: string | undefined): boolean; hint: string }
  /** why writes answer 403 when `token()` is null (default: no token file is configured) */
  noTokenReason?: () => string
}

export class HttpServer {
  private readonly routes: Route[] = []
  private server: Server | null = null
  private upgradeHandler: UpgradeHandler | null = null
  private readonly refusedHosts = new Set<string>()
  readonly name: string

  constructor(private readonly opts: HttpServerOptions) {
    this.name = opts.name ?? 'http'
  }

  get(path: string, handler: Handler, opts: { auth?: boolean } = {}): void {
    this.add('GET', path, handler, opts.auth ?? this.opts.authenticateReads ?? false)
  }

  /** every POST is authenticated */
  post(path: string, handler: Handler): void {
    this.add('POST', path, handler, true)
  }

  /** every DELETE is authenticated */
  delete(path: string, handler: Handler): void {
    this.add('DELETE', path, handler, true)
  }

  private add(method: Route['method'], path: string, handler: Handler, auth: boolean): void {
    const keys: string[] = []
    const source = path.replace(/:(\w+)/g, (_, key: string) => {
      keys.push(key)
      return '([^/]+)'
    })
    this.routes.push({ method, pattern: new RegExp(`^${source}$`), keys, auth, handler })
  }

  /** WebSocket upgrades (the coordinator's agent endpoint); without a handler they are refused */
  onUpgrade(handler: UpgradeHandler): void {
    this.upgradeHandler = handler
  }

  /** the port actually bound (useful with port 0) */
  port(): number {
    const address = this.server?.address()
    return typeof address === 'object' && address ? address.port : 0
  }

  async start(): Promise<void> {
    const { host, port } = splitHostPort(this.opts.listen)
    // handle() answers every error itself; the catch only guards against a bug escaping it.
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err) => {
        this.opts.log.error({ err: (err as Error).message }, 'request handler failed')
        if (!res.headersSent) send(res, { status: 500, body: { error: 'internal error' } })
        else res.destroy()
      })
    }
    const tls = this.opts.tls
    this.server = tls
      ? // A client certificate is optional (bearer tokens still work); the caller checks `authorized`.
        createTlsServer(
          {
            cert: tls.cert,
            key: tls.key,
            ca: tls.ca,
            requestCert: tls.ca !== undefined,
            rejectUnauthorized: false,
          },
          onRequest,
        )
      : createServer(onRequest)
    // An idle kept-alive connection is closed by the client before the server: a client reuses it
    // until the server's `Keep-Alive: timeout` less its margin (undici: 2 s), and with 5 s a client
    // whose event loop lags that much (a loaded host, a proxy's 60 s idle pool) writes a request
    // into a socket the server is closing (ECONNRESET, "other side closed"). Longer than the 60 s
    // idle timeout of the usual load balancers, as their servers are advised to be.
    this.server.keepAliveTimeout = 65_000
    // Headers must arrive within the body timeout too; the whole request is a backstop beyond it.
    const bodyTimeoutMs = this.opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS
    this.server.headersTimeout = bodyTimeoutMs
    this.server.requestTimeout = 2 * bodyTimeoutMs
    if (this.upgradeHandler) this.server.on('upgrade', this.upgradeHandler)
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject)
      this.server!.listen(port, host, () => {
        this.server!.off('error', reject)
        resolve()
      })
    })
    this.opts.log.info({ listen: `${host}:${this.port()}` }, `${this.name} listening`)
  }

  async stop(): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = null
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = parseRequestUrl(req.url)
    if (!url) return send(res, { status: 400, body: { error: 'malformed request target' } })
    const allowedHost = this.opts.allowedHost
    // An absolute-form target (`GET http://name/ HTTP/1.1`) names the host itself, before Host (RFC 9112 3.2.2).
    const absolute = /^[a-z][a-z0-9+.-]*:\/\//i.test(req.url ?? '') ? url.host : null
    if (allowedHost && !(allowedHost.check(req.headers.host) && (absolute === null || allowedHost.check(absolute)))) {
      this.logRefusedHost(req.headers.host ?? '', req.socket.remoteAddress)
      return send(res, {
        status: 421,
        body: { error: `the request's Host does not name this ${this.name}: ${allowedHost.hint}` },
      })
    }
    try {
      if (this.opts.authenticateBeforeRouting && !this.isOpenPath(url.pathname)) this.authenticate(req)
      const route = this.match(req.method ?? 'GET', url.pathname)
      if (route.auth) this.authenticate(req)
      const body =
        req.method === 'POST'
          ? await readJsonBody(req, this.opts.maxBodyBytes, this.opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS)
          : undefined
      const reply = await route.handler({
        method: req.method ?? 'GET',
        path: url.pathname,
        params: route.params,
        query: url.searchParams,
        headers: req.headers,
        body,
      })
      send(res, reply)
    } catch (err) {
      const status = statusOf(err)
      if (status === 408) {
        // The rest of the body may still be on its way: the connection goes with the answer.
        const remote = req.socket.remoteAddress
        this.opts.log.warn({ path: url.pathname, remote }, 'request body too slow: connection cut')
        res.setHeader('connection', 'close')
        res.once('finish', () => req.socket.destroy())
        send(res, { status, body: { error: (err as Error).message } })
      } else if (status !== null) {
        send(res, { status, body: { error: (err as Error).message } })
      } else {
        this.opts.log.error({ err: (err as Error).message, path: url.pathname }, 'request failed')
        send(res, { status: 500, body: { error: (err as Error).message } })
      }
    }
  }

  private match(method: string, path: string): Route & { params: Record<string, string> } {
    let pathMatched = false
    for (const route of this.routes) {
      const m = route.pattern.exec(path)
      if (!m) continue
      pathMatched = true
      if (route.method !== method) continue
      const params: Record<string, string> = {}
      route.keys.forEach((k, i) => {
        params[k] = decodePathParam(m[i + 1])
      })
      return { ...route, params }
    }
    throw pathMatched
      ? new HttpError(405, `method ${method} not allowed on ${path}`)
      : new HttpError(404, `no such path: ${path}`)
  }

  /** whether some route registered without auth serves this path */
  private isOpenPath(path: string): boolean {
    return this.routes.some((route) => !route.auth && route.pattern.test(path))
  }

  /** each refused Host once (the first 100): enough to find a scrape target to allow, not a log flood */
  private logRefusedHost(host: string, remote: string | undefined): void {
    if (this.refusedHosts.size >= 100 || this.refusedHosts.has(host)) return
    this.refusedHosts.add(host)
    this.opts.log.warn(
      { host: host.slice(0, 200), remote },
      `refused a request whose Host does not name this ${this.name}`,
    )
  }

  private authenticate(req: IncomingMessage): void {
    const verdict = checkBearer(req.headers.authorization, this.opts.token())
    if (verdict === 'disabled')
      throw new HttpError(403, `writes are disabled: ${this.opts.noTokenReason?.() ?? 'no token file is configured'}`)
    if (verdict !== 'ok')
      throw new HttpError(401, verdict === 'missing' ? 'missing bearer token' : 'wrong bearer token')
  }
}

function send(res: ServerResponse, reply: Reply): void {
  const text = reply.contentType ? String(reply.body) : JSON.stringify(reply.body) + '\n'
  res.writeHead(reply.status, {
    'content-type': reply.contentType ?? 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  })
  res.end(text)
}

export const DEFAULT_BODY_TIMEOUT_MS = 10_000

async function readJsonBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) throw new HttpError(413, `body larger than ${limit} bytes`)
  const chunks: Buffer[] = []
  let size = 0
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    const late = new HttpError(408, `request body not received within ${timeoutMs / 1000} s`)
    timer = setTimeout(() => reject(late), timeoutMs)
  })
  const read = (async () => {
    for await (const chunk of req) {
      size += (chunk as Buffer).length
      if (size > limit) throw new HttpError(413, `body larger than ${limit} bytes`)
      chunks.push(chunk as Buffer)
    }
  })()
  read.catch(() => {
    /* answered by the race below, or the connection was cut */
  })
  try {
    await Promise.race([read, late])
  } finally {
    clearTimeout(timer)
  }
  const text = Buffer.concat(chunks).toString('utf8').trim()
  if (!text) return undefined
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new HttpError(400, `body is not valid JSON: ${(err as Error).message}`)
  }
}

/** The request target as a URL, or null when it is not one (e.g. `//`, `//[x]/`). */
export function parseRequestUrl(target: string | undefined): URL | null {
  try {
    return new URL(target ?? '/', 'http://localhost')
  } catch {
    return null
  }
}

function decodePathParam(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    throw new HttpError(400, `malformed escape in path: ${raw}`)
  }
}

export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':')
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) }
}

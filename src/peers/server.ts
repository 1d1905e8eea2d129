// The peer listener: GET /v1/images/{id}/export streams `docker save` of one image to another host
// of the fleet. Its own address (peers.listen), apart from the API. It answers 401 without a valid
// peer token, 403 for an image no rollout holds here (it is no general image export), 404 when the
// name the token grants is not on image {id} here, and 503 beyond peers.maxUploads at once. Every
// refusal and upload is logged and counted (PeerServeStats, src/peers/metrics.ts).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import type { ContainerRuntime } from '../runtime/runtime.js'
import { qualifiedRef } from '../registry/reference.js'
import { splitHostPort } from '../http/server.js'
import { PeerServeStats, refusalReason } from './metrics.js'
import { ByteBudget } from './throttle.js'
import { verifyPeerToken } from './token.js'

export interface PeerServerOptions {
  listen: string
  hostId: string
  /** this host's link token: peer tokens are signed with it; null: every request is refused */
  linkToken: () => string | null
  maxUploads: number
  maxUploadBytesPerSecond: number | null
  runtime: Pick<ContainerRuntime, 'inspectImage' | 'saveImage'>
  /** the references rollouts hold on this host: the only ones served */
  rolloutHeld: () => string[]
  nowSeconds: () => number
  log: Logger
  /** serve https with this certificate and key (PEM), read on each start; null: plain http */
  tls?: (() => { cert: Buffer; key: Buffer }) | null
}

const EXPORT_PATH = /^\/v1\/images\/(sha256:[0-9a-f]{64})\/export$/

export class PeerServer {
  private server: Server | null = null
  private readonly budget: ByteBudget | null
  /** what the metrics read */
  readonly stats = new PeerServeStats()

  constructor(private readonly opts: PeerServerOptions) {
    this.budget = opts.maxUploadBytesPerSecond === null ? null : new ByteBudget(opts.maxUploadBytesPerSecond)
  }

  /** uploads streaming now */
  get active(): number {
    return this.stats.uploadsInFlight
  }

  async start(): Promise<void> {
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        this.opts.log.error({ err: (err as Error).message }, 'peer export failed')
        if (!res.headersSent) answer(res, 500, 'export failed')
        else res.destroy()
      })
    }
    const tls = this.opts.tls?.()
    const server: Server = tls ? createTlsServer({ cert: tls.cert, key: tls.key }, onRequest) : createServer(onRequest)
    const { host, port } = splitHostPort(this.opts.listen)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.server = server
  }

  async stop(): Promise<void> {
    const server = this.server
    this.server = null
    if (!server) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  /** the bound address (port 0 resolved) */
  address(): string {
    const a = this.server?.address()
    if (!a || typeof a === 'string') throw new Error('the peer server is not listening')
    return `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { log } = this.opts
    const path = (req.url ?? '').split('?')[0]
    const match = EXPORT_PATH.exec(path)
    if (!match) return this.refuse(req, res, 404, 'no such route')
    if (req.method !== 'GET') return this.refuse(req, res, 405, 'GET only')
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
    if (!bearer) return this.refuse(req, res, 401, 'a peer token is required')
    const verdict = verifyPeerToken(
      bearer[1],
      { hostId: this.opts.hostId, token: this.opts.linkToken() },
      this.opts.nowSeconds(),
    )
    if (!verdict.ok) return this.refuse(req, res, 401, `peer token refused: ${verdict.reason}`)
    const { ref, fetcher } = verdict.claim
    const held = new Set(this.opts.rolloutHeld().map(qualifiedRef))
    if (!held.has(qualifiedRef(ref)))
      return this.refuse(req, res, 403, `${ref} is not held by a rollout on this host`, { ref, fetcher })
    const id = match[1]
    const image = await this.opts.runtime.inspectImage(ref)
    if (!image || image.id !== id)
      return this.refuse(req, res, 404, `${ref} is not image ${id} on this host`, { ref, fetcher })
    if (!this.opts.runtime.saveImage)
      return this.refuse(req, res, 501, 'this runtime cannot export images', { ref, fetcher })
    const { stats } = this
    if (stats.uploadsInFlight >= this.opts.maxUploads) {
      res.setHeader('retry-after', '5')
      return this.refuse(req, res, 503, `already serving ${stats.uploadsInFlight} uploads`, { ref, fetcher })
    }
    stats.uploadsInFlight++
    let bytes = 0
    try {
      const archive = await this.opts.runtime.saveImage(id)
      if (!archive) return this.refuse(req, res, 404, `image ${id} is gone`, { ref, fetcher })
      res.writeHead(200, { 'content-type': 'application/x-tar' })
      log.info({ ref, fetcher, id }, 'serving an image to a peer')
      archive.on('data', (chunk: Buffer) => {
        bytes += chunk.length
        stats.bytesServed += chunk.length
      })
      const stages = this.budget ? [archive, this.budget.throttle(), res] : [archive, res]
      let complete = false
      try {
        await (pipeline as (...s: unknown[]) => Promise<void>)(...stages)
        complete = true
      } catch (err) {
        log.warn({ ref, fetcher, bytes, err: (err as Error).message }, 'peer export cut')
      }
      stats.uploads[complete ? 'complete' : 'cut']++
      if (complete) log.info({ ref, fetcher, bytes }, 'served an image to a peer')
    } finally {
      stats.uploadsInFlight--
    }
  }

  private refuse(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    message: string,
    who: { ref?: string; fetcher?: string } = {},
  ): void {
    const reason = refusalReason(status)
    this.stats.refused[reason]++
    // a refused credential or image is worth a warning: a peer misconfigured, or someone probing
    const level = reason === 'unauthorized' || reason === 'forbidden' ? 'warn' : 'info'
    this.opts.log[level]({ status, reason, from: req.socket.remoteAddress, ...who, message }, 'peer request refused')
    answer(res, status, message)
  }
}

function answer(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ error: message }))
}

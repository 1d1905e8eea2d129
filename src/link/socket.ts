// The link's socket: one WebSocket to a coordinator replica at a time, credentials read again at
// every attempt, a ping that finds a dead coordinator, and reconnects with backoff (longer when the
// coordinator refused the connection), each attempt to the next replica.
import { readFileSync } from 'node:fs'
import WebSocket from 'ws'
import type { AgentContext } from '../core/feature.js'
import { envelop, REFUSAL_CLOSE_CODES } from '../protocol.js'
import { backoffDelay } from '../backoff.js'
import { coordinatorUrls, readTokenFile } from '../config.js'

/** after a refusal (another live connection for this host, a credential for another host) the
 * next attempt waits half of this plus a jittered delay whose ceiling starts at this and doubles
 * per refusal up to reconnectMaxSeconds */
const REFUSED_BASE_MS = 5000

/** What the link does with a connection. */
export interface SocketHandlers {
  /** a connection opened and is the current one */
  opened(ws: WebSocket): void
  /** a text frame arrived on ws */
  frame(ws: WebSocket, data: Buffer): void
}

export class LinkSocket {
  private ws: WebSocket | null = null
  private connected = false
  /** the hello went out on this connection: until then nothing else may be sent on it */
  private greeted = false
  private stopped = false
  private attempt = 0
  /** the coordinator.url entry connected to or tried next */
  private urlIndex = 0
  private refusals = 0
  private failures = 0
  private error: string | null = null
  private reconnectTimer: NodeJS.Timeout | null = null
  private pingTimer: NodeJS.Timeout | null = null

  constructor(
    private readonly ctx: Pick<AgentContext, 'config' | 'log' | 'now'>,
    private readonly handlers: SocketHandlers,
  ) {}

  /** whether a connection is open (its hello may not be sent yet) */
  get isConnected(): boolean {
    return this.connected
  }

  /** the open connection once its hello is sent, or null: the coordinator refuses anything before the hello */
  get connection(): WebSocket | null {
    return this.connected && this.greeted ? this.ws : null
  }

  /** why the link is not connected (the last failure or refusal); null once a connection is accepted */
  get lastError(): string | null {
    return this.error
  }

  /** the replica this link connects to now */
  private get url(): string {
    const urls = coordinatorUrls(this.ctx.config.coordinator)
    return urls[this.urlIndex % urls.length]
  }

  /** The coordinator accepted this connection: the backoff starts over. */
  accepted(): void {
    this.attempt = 0
    this.refusals = 0
    this.error = null
  }

  /** The hello went out on ws: what waited for it may follow. */
  helloSent(ws: WebSocket): void {
    if (this.ws === ws) this.greeted = true
  }

  send(ws: WebSocket, message: object): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message))
  }

  connect(): void {
    if (this.stopped) return
    const { config, log } = this.ctx
    let headers: Record<string, string>
    let ca: Buffer | undefined
    try {
      const token = readTokenFile(config.coordinator.tokenFile)
      if (token === null) throw new Error('coordinator.tokenFile is not set')
      headers = { authorization: `Bearer ${token}` }
      ca = config.coordinator.caFile ? readFileSync(config.coordinator.caFile) : undefined
    } catch (err) {
      this.failed(`cannot read credentials: ${(err as Error).message}`)
      return
    }
    let ws: WebSocket
    try {
      ws = new WebSocket(this.url, {
        headers,
        ca,
        maxPayload: config.coordinator.maxFrameBytes * 2,
        handshakeTimeout: 10_000,
      })
    } catch (err) {
      this.failed(`bad coordinator.url: ${(err as Error).message}`)
      return
    }
    this.ws = ws
    let why = 'connection closed'
    ws.on('open', () => this.onOpen(ws))
    ws.on('message', (data, isBinary) => {
      if (isBinary) return this.reply(ws, 'bad_message', 'binary frames are not part of the protocol')
      // A failing outbox write (a full disk) must be logged, not thrown out of the socket's listener.
      try {
        this.handlers.frame(ws, data as Buffer)
      } catch (err) {
        log.error({ err: (err as Error).message }, 'failed to handle a frame from the coordinator')
      }
    })
    ws.on('pong', () => {
      ;(ws as WebSocket & { alive?: boolean }).alive = true
    })
    ws.on('error', (err) => {
      why = /Unexpected server response: 401/.test(err.message)
        ? 'the coordinator refused the token (401)'
        : err.message
    })
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return
      const wasConnected = this.connected
      this.ws = null
      this.connected = false
      if (this.pingTimer) clearInterval(this.pingTimer)
      if (REFUSAL_CLOSE_CODES.has(code)) {
        log.warn({ code, reason: reason.toString() }, 'the coordinator refused this connection')
        return this.failed(`refused by the coordinator (${code}): ${reason.toString()}`, true)
      }
      if (wasConnected) log.warn({ code, reason: reason.toString() }, 'coordinator link closed')
      this.failed(wasConnected ? `closed with ${code}${reason.length ? `: ${reason.toString()}` : ''}` : why)
    })
  }

  /** Stops reconnecting and closes the connection, waiting a second at most for the close. */
  async close(): Promise<void> {
    this.stopped = true
    for (const timer of [this.reconnectTimer, this.pingTimer]) if (timer) clearTimeout(timer)
    const ws = this.ws
    this.ws = null
    this.connected = false
    if (ws) {
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()))
      ws.close(1001, 'agent stopping')
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())])
      ws.terminate()
    }
  }

  /** Schedules the next attempt; logs the first failure of a streak loudly and the rest quietly. */
  private failed(why: string, refused = false): void {
    if (this.stopped) return
    const { config, log } = this.ctx
    const maxMs = config.coordinator.reconnectMaxSeconds * 1000
    // A refusal is answered the same way on the next try until its cause goes away: back off from
    // a longer base, and whatever the coordinator acked before refusing resets nothing.
    const delay = refused
      ? REFUSED_BASE_MS / 2 +
        backoffDelay(this.refusals++, { baseMs: REFUSED_BASE_MS, maxMs: Math.max(maxMs, REFUSED_BASE_MS) })
      : backoffDelay(this.attempt++, { baseMs: 500, maxMs })
    this.error = why
    this.failures++
    const entry = { url: this.url, why, failures: this.failures, retryInMs: delay }
    // With several replicas, the next attempt goes to the next one: a dead replica is not waited for.
    this.urlIndex = (this.urlIndex + 1) % coordinatorUrls(config.coordinator).length
    if (this.failures === 1 || this.failures % 20 === 0) log.warn(entry, 'cannot reach the coordinator; retrying')
    else log.debug(entry, 'cannot reach the coordinator; retrying')
    this.reconnectTimer = setTimeout(() => this.connect(), delay)
    this.reconnectTimer.unref()
  }

  private onOpen(ws: WebSocket): void {
    const { config, log } = this.ctx
    this.connected = true
    this.greeted = false
    if (this.failures > 0) log.info({ url: this.url, afterFailures: this.failures }, 'coordinator reachable again')
    else log.info({ url: this.url }, 'connected to the coordinator')
    this.failures = 0
    const alive = ws as WebSocket & { alive?: boolean }
    alive.alive = true
    this.pingTimer = setInterval(() => {
      if (!alive.alive) {
        log.warn('coordinator did not answer a ping: closing the link')
        ws.terminate()
        return
      }
      alive.alive = false
      ws.ping()
    }, config.coordinator.pingIntervalSeconds * 1000)
    this.pingTimer.unref()
    this.handlers.opened(ws)
  }

  private reply(ws: WebSocket, code: 'bad_message', message: string): void {
    const body = { type: 'error' as const, code, message, ref: null, retryable: false }
    this.send(ws, envelop(this.ctx.config.hostId, body, { ts: this.ctx.now().toISOString() }))
  }
}

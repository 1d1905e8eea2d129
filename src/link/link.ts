// The agent's link to a coordinator: a WebSocket client that says hello, sends snapshots and every
// bus event (through the durable outbox), runs the coordinator's commands as actions (each command id
// once), resends what is not acked in time, and reconnects with backoff (longer when the coordinator
// refused the connection). Sending never blocks the agent: a missing coordinator only grows the outbox.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import WebSocket from 'ws'
import type { AgentContext, Feature, LinkState } from '../core/feature.js'
import type { AgentEvent } from '../core/events.js'
import type { Component } from '../core/lifecycle.js'
import type { ImageCompat } from '../core/snapshot.js'
import {
  envelop,
  errorReply,
  parseCoordinatorMessage,
  REFUSAL_CLOSE_CODES,
  type Command,
  type CommandResult,
  type CoordinatorMessage,
  type EventMessage,
  type Hello,
  type ReportedImage,
  type SnapshotMessage,
} from '../protocol.js'
import { Outbox } from './outbox.js'
import { peerServingFact } from '../peers/advertise.js'
import { ExecutedCommands } from './executed-commands.js'
import { VERSION } from '../version.js'
import { backoffDelay } from '../backoff.js'
import { coordinatorUrls, readTokenFile } from '../config.js'

/** entries sent and not yet acked on one connection */
const SEND_WINDOW = 256
/** snapshots on change are sent at most this often */
const SNAPSHOT_THROTTLE_MS = 5000
/** after a refusal (another live connection for this host, a credential for another host) the
 * next attempt waits half of this plus a jittered delay whose ceiling starts at this and doubles
 * per refusal up to reconnectMaxSeconds */
const REFUSED_BASE_MS = 5000

/** Registers the link when coordinator.url is set, and declares its state for status and metrics. */
export const coordinatorLinkFeature: Feature = (ctx) => {
  if (!ctx.config.coordinator.url) return { components: [] }
  const link = new CoordinatorLink(ctx)
  return { components: [link], linkState: () => link.state() }
}

export class CoordinatorLink implements Component {
  readonly name = 'coordinator-link'
  private outbox: Outbox | null = null
  private executed: ExecutedCommands | null = null
  /** command ids being run now: a repeat delivered meanwhile is answered by the run's own result */
  private readonly runningCommands = new Set<string>()
  /** events published before start() opened the outbox */
  private early: AgentEvent[] = []
  private ws: WebSocket | null = null
  private connected = false
  private stopped = false
  private attempt = 0
  /** the coordinator.url entry connected to or tried next */
  private urlIndex = 0
  private refusals = 0
  private failures = 0
  /** why the link is not connected (the last failure or refusal); null once a hello is acked */
  private lastError: string | null = null
  /** the id of this connection's hello: its ack means the coordinator accepted the connection */
  private helloId: string | null = null
  /** a retryable error stopped sending new entries until the next resend */
  private stalled = false
  private resendTimer: NodeJS.Timeout | null = null
  private reconnectTimer: NodeJS.Timeout | null = null
  private pingTimer: NodeJS.Timeout | null = null
  private snapshotTimer: NodeJS.Timeout | null = null
  private snapshotThrottle: NodeJS.Timeout | null = null
  private lastSnapshotAt = 0
  /** digest of the image list last sent on this connection: an unchanged list is not sent again */
  private sentImagesDigest: string | null = null
  private sentUpTo = 0
  private warnedUnadvertised = false
  /** entries sent and not yet acked on this connection, with when they were sent */
  private readonly inFlight = new Map<string, number>()
  private readonly unsubscribe: () => void
  private stopRetry: () => void = () => {}

  constructor(private readonly ctx: AgentContext) {
    // Subscribe now so that events published while other components start are not missed.
    this.unsubscribe = ctx.bus.subscribe((e) => this.onEvent(e))
  }

  /** the replica this link connects to now */
  private get url(): string {
    const urls = coordinatorUrls(this.ctx.config.coordinator)
    return urls[this.urlIndex % urls.length]
  }

  /** the largest frame this side sends or accepts (coordinator.maxFrameBytes) */
  private get maxFrameBytes(): number {
    return this.ctx.config.coordinator.maxFrameBytes
  }

  /** the envelope's time, from the agent's clock */
  private stamp(): { ts: string } {
    return { ts: this.ctx.now().toISOString() }
  }

  private readonly dropped: Record<string, number> = {}

  state(): LinkState {
    return {
      configured: true,
      connected: this.connected,
      pending: this.outbox?.stats().pending ?? this.early.length,
      lastError: this.lastError,
      dropped: this.dropped,
    }
  }

  async start(): Promise<void> {
    const { config, log } = this.ctx
    const max = config.coordinator.outboxMaxEvents
    this.outbox = new Outbox(join(config.stateDir, 'outbox.db'), {
      maxEntries: max,
      onDrop: (n, type) => {
        this.dropped[type] = (this.dropped[type] ?? 0) + n
        log.warn({ dropped: n, type, max }, 'outbox full: dropped the oldest events of the least important kind')
      },
      write: (fn) => this.ctx.state.write('outbox', fn),
    })
    this.executed = new ExecutedCommands(join(config.stateDir, 'executed-commands.db'))
    const outbox = this.outbox
    this.stopRetry = this.ctx.state.onRetry(() => outbox.flush())
    for (const e of this.early.splice(0)) this.onEvent(e)
    this.resendTimer = setInterval(() => this.resendOverdue(), Math.min(config.coordinator.resendSeconds, 5) * 1000)
    this.resendTimer.unref()
    this.ctx.store.on('change', this.onSnapshotChange)
    this.snapshotTimer = setInterval(() => this.sendSnapshot(), config.coordinator.snapshotIntervalSeconds * 1000)
    this.snapshotTimer.unref()
    log.info({ url: config.coordinator.url, pending: this.outbox.stats().pending }, 'coordinator link starting')
    this.connect()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.unsubscribe()
    this.stopRetry()
    this.ctx.store.off('change', this.onSnapshotChange)
    const timers = [this.reconnectTimer, this.pingTimer, this.snapshotTimer, this.snapshotThrottle, this.resendTimer]
    for (const timer of timers) if (timer) clearTimeout(timer)
    const ws = this.ws
    this.ws = null
    this.connected = false
    if (ws) {
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()))
      ws.close(1001, 'agent stopping')
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())])
      ws.terminate()
    }
    this.outbox?.flush()
    this.outbox?.close()
    this.executed?.close()
  }

  private connect(): void {
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
        this.onMessage(ws, data as Buffer)
      } catch (err) {
        this.ctx.log.error({ err: (err as Error).message }, 'failed to handle a frame from the coordinator')
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
    this.lastError = why
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
    if (this.failures > 0) log.info({ url: this.url, afterFailures: this.failures }, 'coordinator reachable again')
    else log.info({ url: this.url }, 'connected to the coordinator')
    this.failures = 0
    this.sentUpTo = 0
    this.inFlight.clear()
    this.stalled = false
    this.sentImagesDigest = null
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
    void this.sendHello(ws)
  }

  private async sendHello(ws: WebSocket): Promise<void> {
    // The host facts are not waited for (a slow lsblk would hold up the hello): a hello before the
    // first read says none, and every snapshot from the read on carries them (the read is a change).
    const status = await this.status()
    const { peers } = this.ctx.config
    // Peer tokens are checked with the link token: without one every peer request would be refused.
    const canServe = typeof this.ctx.runtime.saveImage === 'function' && !!this.ctx.config.coordinator.tokenFile
    const serving = peerServingFact(peers, canServe)
    if (peers.serve && !serving && !this.warnedUnadvertised) {
      this.warnedUnadvertised = true
      this.ctx.log.warn(
        { listen: peers.listen },
        'peers.serve is on but the coordinator is not told of it (set peers.advertiseUrl for a wildcard ' +
          'listen; a runtime that cannot export images, or a host without coordinator.tokenFile, only ' +
          'fetches): no host will fetch from this one',
      )
    }
    const hello = envelop<Hello>(
      this.ctx.config.hostId,
      {
        type: 'hello',
        version: VERSION,
        actions: this.ctx.actions.names(),
        facts: serving ? { ...status, peers: serving } : status,
        labels: this.ctx.config.labels,
      },
      this.stamp(),
    )
    this.helloId = hello.id
    this.send(ws, hello)
    this.sendSnapshot()
    this.pump()
  }

  private async status(): Promise<Record<string, unknown>> {
    try {
      return await this.ctx.actions.invoke('status', {}, 'coordinator')
    } catch (err) {
      return { error: (err as Error).message }
    }
  }

  private onMessage(ws: WebSocket, data: Buffer): void {
    const parsed = parseCoordinatorMessage(data, this.maxFrameBytes)
    if (!parsed.ok) {
      this.ctx.log.warn({ code: parsed.error.code, err: parsed.error.message }, 'refused a frame from the coordinator')
      return this.send(ws, { ...errorReply(this.ctx.config.hostId, parsed.error), ...this.stamp() })
    }
    const message: CoordinatorMessage = parsed.message
    if (message.type === 'ack') {
      if (this.helloId !== null && message.ids.includes(this.helloId)) this.onAccepted()
      for (const id of message.ids) this.inFlight.delete(id)
      this.outbox?.remove(message.ids)
      this.pump()
    } else if (message.type === 'command') {
      void this.runCommand(message)
    } else if (message.retryable) {
      this.onRetryable(message.ref, `${message.code}: ${message.message}`)
    } else {
      this.onRefused(message.ref, `${message.code}: ${message.message}`)
    }
  }

  /** The coordinator acked the hello: this connection is accepted, the backoff starts over. */
  private onAccepted(): void {
    this.helloId = null
    this.attempt = 0
    this.refusals = 0
    this.lastError = null
  }

  /**
   * The coordinator could not handle an entry now (e.g. its store failed). Nothing newer is sent
   * until the next resend, which sends every unacked entry again from the oldest, so entries still
   * arrive in order.
   */
  private onRetryable(ref: string | null, why: string): void {
    // A snapshot is not kept: the next one replaces it. Only outbox entries wait for a resend.
    const { log } = this.ctx
    if (ref === null || !this.inFlight.has(ref))
      return void log.debug({ ref, why }, 'the coordinator could not take a frame')
    if (!this.stalled) log.warn({ ref, why }, 'the coordinator could not take an entry; it is sent again later')
    this.stalled = true
  }

  /** Sends every unacked entry again, in order, when one waited longer than resendSeconds or was refused for now. */
  private resendOverdue(): void {
    if (!this.connected || (this.inFlight.size === 0 && !this.stalled)) return
    const cutoff = this.ctx.now().getTime() - this.ctx.config.coordinator.resendSeconds * 1000
    const overdue = this.stalled || [...this.inFlight.values()].some((sentAt) => sentAt <= cutoff)
    if (!overdue) return
    this.ctx.log.info({ unacked: this.inFlight.size }, 'sending unacked entries again')
    this.sentUpTo = 0
    this.inFlight.clear()
    this.stalled = false
    this.pump()
  }

  /** The coordinator refused one of our frames: a refused outbox entry would be refused forever, so it goes. */
  private onRefused(ref: string | null, why: string): void {
    this.ctx.log.error({ ref, why }, 'the coordinator refused a message')
    if (ref && this.inFlight.delete(ref)) {
      this.outbox?.remove([ref])
      this.pump()
    }
  }

  /** Runs a command once per id: a repeat is answered with the stored result, or by the run under way. */
  private async runCommand(command: Command): Promise<void> {
    const { log, config } = this.ctx
    const { commandId } = command
    if (this.runningCommands.has(commandId)) {
      log.info({ commandId }, 'a repeated command that is still running: its result follows')
      return
    }
    const prior = this.priorRun(commandId)
    if (prior.state === 'finished') {
      const what = 'a repeated command: answering with the stored result, not running it again'
      log.info({ commandId, action: command.action }, what)
      const id = (JSON.parse(prior.resultMessage) as { id: string }).id
      return this.enqueue({ id, kind: 'command.result', type: command.action, message: prior.resultMessage })
    }
    if (prior.state === 'started') {
      const what = 'a repeated command that an earlier run of the agent did not finish: not running it again'
      log.warn({ commandId, action: command.action }, what)
      const error = 'the agent stopped while running this command; it was not run again'
      const body = { type: 'command.result' as const, commandId, ok: false, error }
      const result = envelop<CommandResult>(config.hostId, body, this.stamp())
      return this.record(commandId, command.action, JSON.stringify(result), result.id)
    }
    this.runningCommands.add(commandId)
    try {
      await this.execute(command)
    } finally {
      this.runningCommands.delete(commandId)
    }
  }

  private priorRun(commandId: string): ReturnType<ExecutedCommands['prior']> {
    try {
      return this.executed?.prior(commandId) ?? { state: 'unknown' }
    } catch (err) {
      const what = 'cannot read the executed commands; treating the command as new'
      this.ctx.log.error({ commandId, err: (err as Error).message }, what)
      return { state: 'unknown' }
    }
  }

  /** Stores the result for repeats, then queues it for the coordinator. */
  private record(commandId: string, action: string, message: string, id: string): void {
    try {
      this.executed?.finish(commandId, message)
    } catch (err) {
      this.ctx.log.error({ commandId, err: (err as Error).message }, 'cannot record a command result for repeats')
    }
    this.enqueue({ id, kind: 'command.result', type: action, message })
  }

  private async execute(command: Command): Promise<void> {
    const { log, actions, config } = this.ctx
    try {
      this.executed?.begin(command.commandId)
    } catch (err) {
      const what = 'cannot record that a command started; running it anyway'
      log.error({ commandId: command.commandId, err: (err as Error).message }, what)
    }
    log.info({ commandId: command.commandId, action: command.action }, 'running a command from the coordinator')
    let body: Pick<CommandResult, 'ok' | 'result' | 'error'>
    try {
      body = { ok: true, result: await actions.dispatch(command.action, command.args, 'coordinator') }
    } catch (err) {
      body = { ok: false, error: (err as Error).message }
    }
    const resultBody = { type: 'command.result' as const, commandId: command.commandId, ...body }
    let result = envelop<CommandResult>(config.hostId, resultBody, this.stamp())
    let text = JSON.stringify(result)
    if (Buffer.byteLength(text) > this.maxFrameBytes) {
      const error = `the result is ${Buffer.byteLength(text)} bytes, over the frame limit of ${this.maxFrameBytes}`
      result = { ...result, ok: false, result: undefined, error }
      text = JSON.stringify(result)
    }
    this.record(command.commandId, command.action, text, result.id)
  }

  private onEvent(event: AgentEvent): void {
    if (this.stopped) return
    if (!this.outbox) {
      this.early.push(event)
      return
    }
    const message = envelop<EventMessage>(
      this.ctx.config.hostId,
      { type: 'event', eventType: event.type, data: event.data },
      { id: event.id, ts: event.ts },
    )
    let text = JSON.stringify(message)
    if (Buffer.byteLength(text) > this.maxFrameBytes) {
      text = JSON.stringify({ ...message, data: { truncated: true, bytes: Buffer.byteLength(text) } })
    }
    this.enqueue({ id: event.id, kind: 'event', type: event.type, message: text })
  }

  private enqueue(entry: { id: string; kind: 'event' | 'command.result'; type: string; message: string }): void {
    if (!this.outbox || this.stopped) return
    // An entry the disk cannot take is held in memory by the outbox and still sent, in order.
    this.outbox.add(entry)
    this.pump()
  }

  /** Sends outbox entries in order, keeping at most SEND_WINDOW unacked on this connection. */
  private pump(): void {
    const ws = this.ws
    if (!ws || !this.connected || !this.outbox || this.stalled || ws.readyState !== WebSocket.OPEN) return
    const room = SEND_WINDOW - this.inFlight.size
    if (room <= 0) return
    const now = this.ctx.now().getTime()
    for (const entry of this.outbox.entriesAfter(this.sentUpTo, room)) {
      this.sentUpTo = entry.seq
      this.inFlight.set(entry.id, now)
      ws.send(entry.message)
    }
  }

  private readonly onSnapshotChange = (): void => {
    if (this.snapshotThrottle) return
    const wait = Math.max(0, this.lastSnapshotAt + SNAPSHOT_THROTTLE_MS - this.ctx.now().getTime())
    this.snapshotThrottle = setTimeout(() => {
      this.snapshotThrottle = null
      this.sendSnapshot()
    }, wait)
    this.snapshotThrottle.unref()
  }

  private sendSnapshot(): void {
    const ws = this.ws
    if (!ws || !this.connected) return
    this.lastSnapshotAt = this.ctx.now().getTime()
    void this.status().then((status) => {
      if (this.ws !== ws) return
      const snapshot = buildSnapshotMessage(this.ctx, status)
      if (snapshot.localImages) {
        const digest = createHash('sha256').update(JSON.stringify(snapshot.localImages)).digest('hex')
        if (digest === this.sentImagesDigest) snapshot.localImages = null
        else this.sentImagesDigest = digest
      }
      if (Buffer.byteLength(JSON.stringify(snapshot)) > this.maxFrameBytes) {
        this.ctx.log.warn(
          { images: snapshot.localImages?.length },
          'the image list does not fit in one frame: sending the snapshot without it',
        )
        snapshot.localImages = null
        this.sentImagesDigest = null
      }
      this.send(ws, snapshot)
    })
  }

  private reply(ws: WebSocket, code: 'bad_message', message: string): void {
    this.send(
      ws,
      envelop(this.ctx.config.hostId, { type: 'error', code, message, ref: null, retryable: false }, this.stamp()),
    )
  }

  private send(ws: WebSocket, message: object): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message))
  }
}

const asObject = (v: unknown): Record<string, unknown> | null =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null

function reportedCompat(c: ImageCompat): NonNullable<ReportedImage['compat']> {
  const out: NonNullable<ReportedImage['compat']> = {
    compatible: c.compatible,
    reason: c.reason,
    requirement: c.requirement,
  }
  if (c.kernels !== undefined) out.kernels = c.kernels
  if (c.kernelsReason !== undefined) out.kernelsReason = c.kernelsReason
  if (c.enforced !== undefined) out.enforced = c.enforced
  return out
}

function buildSnapshotMessage(
  ctx: Pick<AgentContext, 'config' | 'store' | 'now'>,
  status: Record<string, unknown>,
): SnapshotMessage {
  const images = ctx.store.get().images
  const localImages: ReportedImage[] | null = images
    ? images.map((i) => ({
        id: i.id,
        repoTags: i.repoTags,
        repoDigests: i.repoDigests,
        sizeBytes: i.sizeBytes,
        cudaEnv: i.cudaEnv,
        compat: i.compat ? reportedCompat(i.compat) : null,
      }))
    : null
  const snapshot = ctx.store.get()
  return envelop<SnapshotMessage>(
    ctx.config.hostId,
    {
      type: 'snapshot',
      gpu: asObject(status.gpu) ?? { ...snapshot.gpu },
      disk: asObject(status.disk) ?? (snapshot.disk ? { ...snapshot.disk } : null),
      images: asObject(status.images),
      localImages,
      lastPrune: asObject(status.lastPrune),
      lastPrewarm: asObject(status.lastPrewarm),
      labels: ctx.config.labels,
      ...(snapshot.host ? { host: snapshot.host } : {}),
    },
    { ts: ctx.now().toISOString() },
  )
}

// The agents' side of the coordinator: the WebSocket endpoint (credential checked on the upgrade,
// bound to one host), one live session per host, every frame answered with an ack or an error,
// events stored then acked in batches, commands sent until a result is stored.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { parseRequestUrl } from '../../http/server.js'
import {
  AGENTS_PATH,
  CLOSE_CODES,
  envelop,
  errorReply,
  parseAgentMessage,
  ProtocolError,
  type AgentMessage,
  type Command,
  type Hello,
} from '../../protocol.js'
import type { HubCounters, HubOptions } from './options.js'
import { COORDINATOR_EVENT_PREFIX } from '../rollouts/store.js'
import { withPeerAdvert } from './peer-hello.js'
import { closeReason, COORDINATOR_ID, refuseUpgrade } from './replies.js'
import { answer, answersPings, newSession, releaseFrames, send, type HeldFrames, type Session } from './session.js'

/** frames an agent may have sent before its hello is answered (an agent sends at most its send window) */
const MAX_HELD_FRAMES = 1024
/** RFC 6455: the frame broke the endpoint's policy */
const POLICY_VIOLATION = 1008

export class AgentHub {
  readonly name = 'agent-hub'
  private readonly wss: WebSocketServer
  private readonly sessions = new Map<string, Session>()
  private readonly all = new Set<Session>()
  private pingTimer: NodeJS.Timeout | null = null
  readonly counters: HubCounters = { eventsReceived: 0, eventsDuplicate: 0, framesRefused: 0, connectionsRefused: 0 }

  constructor(private readonly opts: HubOptions) {
    // The hard cap is above the protocol limit so that a frame over the limit is answered with an
    // error; beyond the cap ws closes the connection (1009) before buffering it whole.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxFrameBytes * 4, perMessageDeflate: false })
    // A command created through any replica: sent here when its host is connected here.
    opts.store.onCommandCreated((hostId) => void this.dispatch(hostId))
  }

  async start(): Promise<void> {
    this.pingTimer = setInterval(() => this.heartbeat(), this.opts.pingIntervalSeconds * 1000)
    this.pingTimer.unref()
  }

  async stop(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer)
    for (const session of this.all) {
      this.flush(session)
      session.ws.terminate()
    }
    await new Promise<void>((resolve) => this.wss.close(() => resolve()))
  }

  connectedCount(): number {
    return this.sessions.size
  }

  isConnected(hostId: string): boolean {
    return this.sessions.has(hostId)
  }

  /** The HTTP server's upgrade handler: only /v1/agents, only with an agent credential. */
  readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy())
    const path = parseRequestUrl(req.url)?.pathname
    if (path === undefined) return refuseUpgrade(socket, 400, 'Bad Request')
    const identity = this.opts.authenticate(req)
    if (!identity.ok) {
      const why = identity.reason
      this.opts.log.warn({ remote: req.socket.remoteAddress, why }, 'refused an agent: bad or missing credential')
      return refuseUpgrade(socket, 401, 'Unauthorized')
    }
    if (path !== AGENTS_PATH) return refuseUpgrade(socket, 404, 'Not Found')
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req, identity.hostId))
  }

  private accept(ws: WebSocket, req: IncomingMessage, credentialHostId: string | null): void {
    const session = newSession(ws, credentialHostId, req.socket.remoteAddress ?? null)
    this.all.add(session)
    ws.on('pong', () => {
      session.alive = true
      session.lastSignAt = Date.now()
    })
    ws.on('message', (data, isBinary) => {
      if (session.closing) return
      if (session.held) return this.hold(session, session.held, data as Buffer, isBinary)
      this.handleFrame(session, data as Buffer, isBinary)
    })
    ws.on('error', (err) => this.opts.log.warn({ hostId: session.hostId, err: err.message }, 'agent connection error'))
    ws.on('close', () => this.onClose(session))
    this.opts.log.debug({ remote: req.socket.remoteAddress }, 'agent connected')
  }

  /**
   * Keeps a frame until the hello is decided: past maxFrameBytes held the socket stops being read,
   * past MAX_HELD_FRAMES the connection is closed (1008).
   */
  private hold(session: Session, held: HeldFrames, data: Buffer, isBinary: boolean): void {
    const { maxFrameBytes, log } = this.opts
    if (held.frames.length >= MAX_HELD_FRAMES) {
      const why = `more than ${MAX_HELD_FRAMES} frames sent before the hello was answered`
      log.warn({ hostId: session.credentialHostId, remote: session.remoteAddress, why }, 'closed an agent connection')
      return this.close(session, POLICY_VIOLATION, why)
    }
    held.frames.push({ data, isBinary })
    held.bytes += data.length
    if (held.bytes > maxFrameBytes && !session.ws.isPaused) session.ws.pause()
  }

  private handleFrame(session: Session, data: Buffer, isBinary: boolean): void {
    try {
      this.onFrame(session, data, isBinary)
    } catch (err) {
      this.opts.log.error({ hostId: session.hostId, err: (err as Error).message }, 'failed to handle an agent frame')
      send(session, errorReply(COORDINATOR_ID, new ProtocolError('internal', (err as Error).message, null), true))
    }
  }

  private onFrame(session: Session, data: Buffer, isBinary: boolean): void {
    session.alive = true
    session.lastSignAt = Date.now()
    const parsed = isBinary
      ? {
          ok: false as const,
          error: new ProtocolError('bad_message', 'binary frames are not part of the protocol', null),
        }
      : parseAgentMessage(data, this.opts.maxFrameBytes)
    if (!parsed.ok) return this.refuse(session, parsed.error)
    const message: AgentMessage = parsed.message
    if (message.type === 'hello') return void this.onHello(session, message)
    if (session.hostId === null)
      return this.refuse(session, new ProtocolError('bad_message', 'the first message must be hello', message.id))
    if (message.hostId !== session.hostId) {
      return this.refuse(
        session,
        new ProtocolError(
          'bad_message',
          `hostId ${message.hostId} differs from ${session.hostId} of the hello`,
          message.id,
        ),
      )
    }
    switch (message.type) {
      case 'snapshot':
        return void this.write(this.opts.store.recordSnapshot(message)).then((stored) => {
          answer(session, [message.id], stored)
          if (stored && message.localImages !== null) this.opts.onImagesReported?.(message.hostId)
        })
      case 'event':
        if (message.eventType.startsWith(COORDINATOR_EVENT_PREFIX)) {
          const prefix = COORDINATOR_EVENT_PREFIX
          const why = `event type ${message.eventType}: the ${prefix} prefix is reserved to the coordinator`
          return this.refuse(session, new ProtocolError('bad_message', why, message.id))
        }
        session.events.push(message)
        return this.scheduleFlush(session)
      case 'command.result':
        session.results.push(message)
        return this.scheduleFlush(session)
      case 'error':
        this.opts.log.warn(
          { hostId: session.hostId, code: message.code, ref: message.ref, err: message.message },
          'the agent refused a message',
        )
    }
  }

  /**
   * A hello names the host of this connection: only the credential's host, and only when that host
   * has no other live connection (an older one that no longer answers pings is replaced). Frames
   * after the hello wait until it is decided, stored and the host's unfinished commands are sent.
   */
  private async onHello(session: Session, hello: Hello): Promise<void> {
    const { log } = this.opts
    if (session.hostId !== null) {
      if (hello.hostId !== session.hostId) {
        const why = `this connection already speaks for ${session.hostId}`
        return this.refuse(session, new ProtocolError('bad_message', why, hello.id))
      }
      return answer(session, [hello.id], true)
    }
    if (session.credentialHostId !== null && hello.hostId !== session.credentialHostId) {
      const { credentialHostId } = session
      log.warn({ hostId: hello.hostId, credentialHostId }, "refused a hello: the credential is another host's")
      return this.close(session, CLOSE_CODES.wrongHost, `hostId ${hello.hostId} is not the host of this credential`)
    }
    // Frames are held from here until the hello is decided (release, close).
    session.held = { frames: [], bytes: 0 }
    const previous = this.sessions.get(hello.hostId)
    if (previous && previous !== session) {
      if (await answersPings(previous, this.opts.pingIntervalSeconds)) {
        log.warn({ hostId: hello.hostId }, 'refused a second connection for a host that is connected and answering')
        return this.close(session, CLOSE_CODES.duplicate, 'this host already has a live connection')
      }
      if (session.ws.readyState !== session.ws.OPEN) return void releaseFrames(session)
      log.warn({ hostId: hello.hostId }, "the host's older connection stopped answering pings: replacing it")
      this.flush(previous)
      previous.hostId = null
      if (this.sessions.get(hello.hostId) === previous) this.sessions.delete(hello.hostId)
      previous.ws.close(CLOSE_CODES.replaced, 'replaced by a newer connection')
      previous.ws.terminate()
    }
    const recorded = await this.write(this.opts.store.recordHello(withPeerAdvert(session, hello, this.opts.log)))
    if (!recorded) {
      return this.close(session, CLOSE_CODES.unavailable, 'the coordinator cannot store the hello; try later')
    }
    if (session.ws.readyState !== session.ws.OPEN) return void releaseFrames(session)
    if (this.sessions.has(hello.hostId)) {
      return this.close(session, CLOSE_CODES.duplicate, 'this host already has a live connection')
    }
    session.hostId = hello.hostId
    this.sessions.set(hello.hostId, session)
    log.info({ hostId: hello.hostId, version: hello.version }, 'agent said hello')
    answer(session, [hello.id], true)
    // The host's unfinished commands are sent before a frame it sent after the hello is handled: a
    // result handled first would make a command the agent has to answer again look finished.
    await this.dispatch(hello.hostId)
    this.opts.onHostConnected?.(hello.hostId)
    for (const frame of releaseFrames(session)) this.handleFrame(session, frame.data, frame.isBinary)
  }

  private close(session: Session, code: number, reason: string): void {
    this.counters.connectionsRefused++
    session.held = null
    session.closing = true
    session.ws.close(code, closeReason(reason))
    // Read on (and ignore) what follows, so the agent's closing frame ends the handshake.
    session.ws.resume()
  }

  /** A durable write whose failure is logged; resolves false when it failed. */
  private write(written: Promise<unknown>): Promise<boolean> {
    return written.then(
      () => true,
      (err: Error) => {
        this.opts.log.error({ err: err.message }, 'cannot write to the fleet database')
        return false
      },
    )
  }

  private refuse(session: Session, error: ProtocolError): void {
    this.counters.framesRefused++
    this.opts.log.warn(
      { hostId: session.hostId, code: error.code, ref: error.ref, err: error.message },
      'refused a frame from an agent',
    )
    send(session, errorReply(COORDINATOR_ID, error))
  }

  private scheduleFlush(session: Session): void {
    if (session.flushScheduled) return
    session.flushScheduled = true
    setImmediate(() => this.flush(session))
  }

  /** Stores what arrived since the last flush, then acks it: stored before acked. */
  private flush(session: Session): void {
    session.flushScheduled = false
    const events = session.events.splice(0)
    const results = session.results.splice(0)
    if (!events.length && !results.length) return
    const { store, log } = this.opts
    const hostId = session.hostId ?? events[0]?.hostId ?? results[0].hostId
    const stored = store.recordBatch(hostId, events, results).then(({ added, unknownResults }) => {
      this.counters.eventsReceived += events.length
      this.counters.eventsDuplicate += events.length - added
      for (const commandId of unknownResults) {
        log.warn({ hostId, commandId }, 'a result for an unknown command: dropped')
      }
    })
    void this.write(stored).then((stored) => {
      answer(session, [...events.map((e) => e.id), ...results.map((r) => r.id)], stored)
      if (stored && results.length) this.opts.onResultsStored?.()
    })
  }

  /**
   * Sends every command of a host that has no result yet, once per connection: a command sent on a
   * connection that dropped is sent again on the next one (the agent runs each id once).
   */
  async dispatch(hostId: string): Promise<void> {
    if (!this.sessions.has(hostId)) return
    let pending
    try {
      pending = await this.opts.store.pendingCommands(hostId)
    } catch (err) {
      // Read again at the next heartbeat.
      return void this.opts.log.warn({ hostId, err: (err as Error).message }, 'cannot read the commands of a host')
    }
    const session = this.sessions.get(hostId)
    if (!session) return
    for (const c of pending) {
      if (session.dispatched.has(c.commandId)) continue
      const command = envelop<Command>(COORDINATOR_ID, {
        type: 'command',
        commandId: c.commandId,
        action: c.action,
        args: c.args,
      })
      if (!send(session, command)) return
      session.dispatched.add(c.commandId)
      void this.write(this.opts.store.markRunning(c.commandId))
    }
  }

  private onClose(session: Session): void {
    this.all.delete(session)
    this.flush(session)
    const hostId = session.hostId
    if (hostId && this.sessions.get(hostId) === session) {
      this.sessions.delete(hostId)
      void this.write(this.opts.store.recordDisconnect(hostId))
      this.opts.log.info({ hostId }, 'agent disconnected')
    }
  }

  private heartbeat(): void {
    for (const session of this.all) {
      if (session.held) continue
      if (!session.alive) {
        this.opts.log.warn({ hostId: session.hostId }, 'agent did not answer a ping: closing its connection')
        session.ws.terminate()
        continue
      }
      session.alive = false
      session.ws.ping()
    }
    void this.opts.store.expireCommands(this.opts.commandTimeoutSeconds).then(
      (expired) => {
        if (expired) this.opts.log.warn({ expired }, 'commands without a result in time were failed')
      },
      () => {},
    )
    // The command listener may have missed some (a notification lost while it reconnected): the
    // commands table is the truth, checked against this replica's connections once a heartbeat.
    void this.opts.store.hostsWithPendingCommands().then(
      (hostIds) => hostIds.forEach((hostId) => void this.dispatch(hostId)),
      () => {},
    )
  }
}

// The agents' side of the coordinator: the WebSocket endpoint (token checked on the upgrade), one
// session per host, events stored then acked in batches, commands sent and their results recorded.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocketServer, type WebSocket } from 'ws'
import { checkBearer } from '../http/auth.js'
import { parseRequestUrl } from '../http/server.js'
import {
  AGENTS_PATH, envelop, errorReply, parseAgentMessage, ProtocolError,
  type Ack, type AgentMessage, type Command, type CommandResult, type EventMessage,
} from '../protocol.js'
import type { FleetStore } from './store.js'

const COORDINATOR_ID = 'coordinator'

interface Session {
  ws: WebSocket
  hostId: string | null
  alive: boolean
  /** events and results received and not yet stored and acked */
  events: EventMessage[]
  results: CommandResult[]
  flushScheduled: boolean
  /** commands sent on this connection whose 'running' mark may not be committed yet */
  dispatched: Set<string>
}

export interface HubCounters {
  eventsReceived: number
  eventsDuplicate: number
  framesRefused: number
}

export class AgentHub {
  readonly name = 'agent-hub'
  private readonly wss: WebSocketServer
  private readonly sessions = new Map<string, Session>()
  private readonly all = new Set<Session>()
  private pingTimer: NodeJS.Timeout | null = null
  readonly counters: HubCounters = { eventsReceived: 0, eventsDuplicate: 0, framesRefused: 0 }

  constructor(private readonly opts: {
    store: FleetStore
    log: Logger
    agentToken: () => string | null
    maxFrameBytes: number
    pingIntervalSeconds: number
    commandTimeoutSeconds: number
  }) {
    // The hard cap is above the protocol limit so that a frame over the limit is answered with an
    // error; beyond the cap ws closes the connection (1009) before buffering it whole.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxFrameBytes * 4, perMessageDeflate: false })
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

  /** The HTTP server's upgrade handler: only /v1/agents, only with the agents' token. */
  readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy())
    const path = parseRequestUrl(req.url)?.pathname
    if (path === undefined) return refuse(socket, 400, 'Bad Request')
    if (path !== AGENTS_PATH) return refuse(socket, 404, 'Not Found')
    const verdict = checkBearer(req.headers.authorization, this.opts.agentToken())
    if (verdict !== 'ok') {
      this.opts.log.warn({ remote: req.socket.remoteAddress, verdict }, 'refused an agent: bad or missing token')
      return refuse(socket, 401, 'Unauthorized')
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req))
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const session: Session = { ws, hostId: null, alive: true, events: [], results: [], flushScheduled: false, dispatched: new Set() }
    this.all.add(session)
    ws.on('pong', () => { session.alive = true })
    ws.on('message', (data, isBinary) => {
      try {
        this.onFrame(session, data as Buffer, isBinary)
      } catch (err) {
        this.opts.log.error({ hostId: session.hostId, err: (err as Error).message }, 'failed to handle an agent frame')
        this.send(session, errorReply(COORDINATOR_ID, new ProtocolError('internal', (err as Error).message, null)))
      }
    })
    ws.on('error', (err) => this.opts.log.warn({ hostId: session.hostId, err: err.message }, 'agent connection error'))
    ws.on('close', () => this.onClose(session))
    this.opts.log.debug({ remote: req.socket.remoteAddress }, 'agent connected')
  }

  private onFrame(session: Session, data: Buffer, isBinary: boolean): void {
    session.alive = true
    const parsed = isBinary
      ? { ok: false as const, error: new ProtocolError('bad_message', 'binary frames are not part of the protocol', null) }
      : parseAgentMessage(data, this.opts.maxFrameBytes)
    if (!parsed.ok) return this.refuse(session, parsed.error)
    const message: AgentMessage = parsed.message
    if (message.type === 'hello') return this.onHello(session, message)
    if (session.hostId === null) return this.refuse(session, new ProtocolError('bad_message', 'the first message must be hello', message.id))
    if (message.hostId !== session.hostId) {
      return this.refuse(session, new ProtocolError('bad_message', `hostId ${message.hostId} differs from ${session.hostId} of the hello`, message.id))
    }
    switch (message.type) {
      case 'snapshot': void this.write(() => this.opts.store.recordSnapshot(message)); return
      case 'event': session.events.push(message); return this.scheduleFlush(session)
      case 'command.result': session.results.push(message); return this.scheduleFlush(session)
      case 'error': this.opts.log.warn({ hostId: session.hostId, code: message.code, ref: message.ref, err: message.message }, 'the agent refused a message')
    }
  }

  private onHello(session: Session, hello: Extract<AgentMessage, { type: 'hello' }>): void {
    const previous = this.sessions.get(hello.hostId)
    if (previous && previous !== session) {
      this.opts.log.warn({ hostId: hello.hostId }, 'a second connection for this host: closing the older one')
      this.flush(previous)
      previous.hostId = null
      previous.ws.close(4000, 'replaced by a newer connection')
    }
    session.hostId = hello.hostId
    this.sessions.set(hello.hostId, session)
    this.opts.log.info({ hostId: hello.hostId, version: hello.version }, 'agent said hello')
    void this.write(() => this.opts.store.recordHello(hello)).then(() => {
      this.send(session, envelop<Ack>(COORDINATOR_ID, { type: 'ack', ids: [hello.id] }))
      this.dispatch(hello.hostId)
    })
  }

  /** A durable write whose failure is logged; resolves false when it failed. */
  private write(work: () => unknown): Promise<boolean> {
    return this.opts.store.write(work).then(() => true, (err: Error) => {
      this.opts.log.error({ err: err.message }, 'cannot write to the fleet database')
      return false
    })
  }

  private refuse(session: Session, error: ProtocolError): void {
    this.counters.framesRefused++
    this.opts.log.warn({ hostId: session.hostId, code: error.code, ref: error.ref, err: error.message }, 'refused a frame from an agent')
    this.send(session, errorReply(COORDINATOR_ID, error))
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
    const hostId = session.hostId
    void this.write(() => {
      if (events.length) {
        const added = store.insertEvents(events)
        this.counters.eventsReceived += events.length
        this.counters.eventsDuplicate += events.length - added
      }
      for (const r of results) {
        if (!store.finishCommand(r.hostId, r.commandId, r.ok, r.result, r.error)) {
          log.warn({ hostId: r.hostId, commandId: r.commandId }, 'a result for an unknown command: dropped')
        }
      }
      if (hostId) store.touch(hostId)
    }).then((stored) => {
      if (!stored) return
      const ids = [...events.map((e) => e.id), ...results.map((r) => r.id)]
      this.send(session, envelop<Ack>(COORDINATOR_ID, { type: 'ack', ids }))
    })
  }

  /** Sends every pending command of a host, if it is connected. */
  dispatch(hostId: string): void {
    const session = this.sessions.get(hostId)
    if (!session) return
    for (const c of this.opts.store.pendingCommands(hostId)) {
      if (session.dispatched.has(c.commandId)) continue
      const command = envelop<Command>(COORDINATOR_ID, { type: 'command', commandId: c.commandId, action: c.action, args: c.args })
      if (!this.send(session, command)) return
      session.dispatched.add(c.commandId)
      void this.write(() => this.opts.store.markRunning(c.commandId))
    }
  }

  private onClose(session: Session): void {
    this.all.delete(session)
    this.flush(session)
    const hostId = session.hostId
    if (hostId && this.sessions.get(hostId) === session) {
      this.sessions.delete(hostId)
      void this.write(() => this.opts.store.recordDisconnect(hostId))
      this.opts.log.info({ hostId }, 'agent disconnected')
    }
  }

  private heartbeat(): void {
    for (const session of this.all) {
      if (!session.alive) {
        this.opts.log.warn({ hostId: session.hostId }, 'agent did not answer a ping: closing its connection')
        session.ws.terminate()
        continue
      }
      session.alive = false
      session.ws.ping()
    }
    void this.opts.store.write(() => this.opts.store.expireCommands(this.opts.commandTimeoutSeconds)).then((expired) => {
      if (expired) this.opts.log.warn({ expired }, 'commands without a result in time were failed')
    }, () => {})
  }

  private send(session: Session, message: object): boolean {
    if (session.ws.readyState !== session.ws.OPEN) return false
    session.ws.send(JSON.stringify(message))
    return true
  }
}

function refuse(socket: Duplex, status: number, text: string): void {
  const body = JSON.stringify({ error: text }) + '\n'
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  setTimeout(() => socket.destroy(), 1000).unref()
}

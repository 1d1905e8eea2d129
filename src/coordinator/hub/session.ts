// One agent connection as the hub keeps it, and what is done on it alone: holding and releasing
// the frames sent before the hello is decided, probing it for life, sending and acking.
import type { WebSocket } from 'ws'
import { envelop, errorReply, ProtocolError, type Ack, type CommandResult, type EventMessage } from '../../protocol.js'
import { COORDINATOR_ID } from './replies.js'

/**
 * Frames that arrived while the hello was being decided (up to 5 s waiting for the host's older
 * connection to answer a ping). Once they pass maxFrameBytes the socket is paused, so TCP holds
 * the rest at the sender: what is held is at most maxFrameBytes and what ws had already read. The
 * socket is not paused before that, so an agent's own pings are answered while it waits.
 */
export interface HeldFrames {
  frames: { data: Buffer; isBinary: boolean }[]
  bytes: number
}

export interface Session {
  ws: WebSocket
  /** the host of the accepted hello */
  hostId: string | null
  /** the host the credential speaks for; null: any (the shared token) */
  credentialHostId: string | null
  /** the address the connection came from (a proxy's, behind one) */
  remoteAddress: string | null
  alive: boolean
  /** when the agent last showed it is there (a frame or a pong) */
  lastSignAt: number
  /** frames that arrived while the hello was being decided, handled in order once it is accepted */
  held: HeldFrames | null
  /** refused and closing: later frames are ignored, not refused (a refusal would make the agent drop them) */
  closing: boolean
  /** events and results received and not yet stored and acked */
  events: EventMessage[]
  results: CommandResult[]
  flushScheduled: boolean
  /** commands sent on this connection whose 'running' mark may not be committed yet */
  dispatched: Set<string>
}

export function newSession(ws: WebSocket, credentialHostId: string | null, remoteAddress: string | null): Session {
  return {
    ws,
    hostId: null,
    credentialHostId,
    remoteAddress,
    alive: true,
    lastSignAt: Date.now(),
    held: null,
    closing: false,
    events: [],
    results: [],
    flushScheduled: false,
    dispatched: new Set(),
  }
}

/** The hello is decided: nothing more is held, the socket reads again. */
export function releaseFrames(session: Session): HeldFrames['frames'] {
  const frames = session.held?.frames ?? []
  session.held = null
  session.ws.resume()
  return frames
}

/** Whether a connection shows life: a sign within the ping interval, else a pong to a probe in time. */
export function answersPings(session: Session, pingIntervalSeconds: number): Promise<boolean> {
  if (session.ws.readyState !== session.ws.OPEN) return Promise.resolve(false)
  const probeMs = Math.min(5000, pingIntervalSeconds * 1000)
  const since = Date.now()
  return new Promise((resolve) => {
    const done = (alive: boolean) => {
      clearTimeout(timer)
      session.ws.off('pong', onPong)
      resolve(alive)
    }
    const onPong = () => done(true)
    const timer = setTimeout(() => done(session.lastSignAt >= since), probeMs)
    session.ws.on('pong', onPong)
    session.ws.ping()
  })
}

export function send(session: Session, message: object): boolean {
  if (session.ws.readyState !== session.ws.OPEN) return false
  session.ws.send(JSON.stringify(message))
  return true
}

/** Acks what was stored; answers what could not be stored with a retryable error per frame. */
export function answer(session: Session, ids: string[], stored: boolean): void {
  if (!ids.length) return
  if (stored) return void send(session, envelop<Ack>(COORDINATOR_ID, { type: 'ack', ids }))
  for (const id of ids) {
    const error = new ProtocolError('store_failed', 'the coordinator could not store this; send it again later', id)
    send(session, errorReply(COORDINATOR_ID, error, true))
  }
}

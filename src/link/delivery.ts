// Delivery of the outbox: every bus event and command result is written to the durable outbox,
// then sent in order on the open connection with at most SEND_WINDOW unacked; an ack removes it,
// and what is not acked in time (or was refused for now) is sent again from the oldest. Sending
// never blocks the agent: a missing coordinator only grows the outbox.
import { join } from 'node:path'
import WebSocket from 'ws'
import type { AgentContext } from '../core/feature.js'
import type { AgentEvent } from '../core/events.js'
import { envelop, type EventMessage } from '../protocol.js'
import { Outbox, type OutboxEntry } from './outbox.js'
import type { LinkSocket } from './socket.js'

/** entries sent and not yet acked on one connection */
const SEND_WINDOW = 256

/** what is queued for the coordinator: an event or a command result, as its protocol message */
export type DeliveryEntry = Omit<OutboxEntry, 'seq'>

export class Delivery {
  private outbox: Outbox | null = null
  /** events published before open() opened the outbox */
  private early: AgentEvent[] = []
  private stopped = false
  /** outbox entries dropped to keep its bound, by type */
  readonly dropped: Record<string, number> = {}
  /** entries sent and not yet acked on this connection, with when they were sent */
  private readonly inFlight = new Map<string, number>()
  private sentUpTo = 0
  /** a retryable error stopped sending new entries until the next resend */
  private stalled = false
  private resendTimer: NodeJS.Timeout | null = null
  private readonly unsubscribe: () => void
  private stopRetry: () => void = () => {}

  constructor(
    private readonly ctx: Pick<AgentContext, 'config' | 'log' | 'bus' | 'state' | 'now'>,
    private readonly socket: Pick<LinkSocket, 'connection'>,
  ) {
    // Subscribe now so that events published while other components start are not missed.
    this.unsubscribe = ctx.bus.subscribe((e) => this.onEvent(e))
  }

  /** entries waiting for an ack (or for the outbox to open) */
  get pending(): number {
    return this.outbox?.stats().pending ?? this.early.length
  }

  /** Opens the outbox, queues the events published before, and starts resending what is overdue. */
  open(): void {
    const { config, log } = this.ctx
    const max = config.coordinator.outboxMaxEvents
    const outbox = new Outbox(join(config.stateDir, 'outbox.db'), {
      maxEntries: max,
      onDrop: (n, type) => {
        this.dropped[type] = (this.dropped[type] ?? 0) + n
        log.warn({ dropped: n, type, max }, 'outbox full: dropped the oldest events of the least important kind')
      },
      write: (fn) => this.ctx.state.write('outbox', fn),
    })
    this.outbox = outbox
    this.stopRetry = this.ctx.state.onRetry(() => outbox.flush())
    for (const e of this.early.splice(0)) this.onEvent(e)
    this.resendTimer = setInterval(() => this.resendOverdue(), Math.min(config.coordinator.resendSeconds, 5) * 1000)
    this.resendTimer.unref()
  }

  /** Takes nothing more: stops listening to the bus and resending. */
  stop(): void {
    this.stopped = true
    this.unsubscribe()
    this.stopRetry()
    if (this.resendTimer) clearTimeout(this.resendTimer)
  }

  /** Writes what the outbox still holds in memory and closes it. */
  close(): void {
    this.outbox?.flush()
    this.outbox?.close()
  }

  /** A new connection: nothing is in flight on it, everything unacked is sent from the oldest. */
  restart(): void {
    this.sentUpTo = 0
    this.inFlight.clear()
    this.stalled = false
  }

  enqueue(entry: DeliveryEntry): void {
    if (!this.outbox || this.stopped) return
    // An entry the disk cannot take is held in memory by the outbox and still sent, in order.
    this.outbox.add(entry)
    this.pump()
  }

  /** Sends outbox entries in order, keeping at most SEND_WINDOW unacked on this connection. */
  pump(): void {
    const ws = this.socket.connection
    if (!ws || !this.outbox || this.stalled || ws.readyState !== WebSocket.OPEN) return
    const room = SEND_WINDOW - this.inFlight.size
    if (room <= 0) return
    const now = this.ctx.now().getTime()
    for (const entry of this.outbox.entriesAfter(this.sentUpTo, room)) {
      this.sentUpTo = entry.seq
      this.inFlight.set(entry.id, now)
      ws.send(entry.message)
    }
  }

  acked(ids: string[]): void {
    for (const id of ids) this.inFlight.delete(id)
    this.outbox?.remove(ids)
    this.pump()
  }

  /**
   * The coordinator could not handle an entry now (e.g. its store failed). Nothing newer is sent
   * until the next resend, which sends every unacked entry again from the oldest, so entries still
   * arrive in order.
   */
  retryable(ref: string | null, why: string): void {
    // A snapshot is not kept: the next one replaces it. Only outbox entries wait for a resend.
    const { log } = this.ctx
    if (ref === null || !this.inFlight.has(ref))
      return void log.debug({ ref, why }, 'the coordinator could not take a frame')
    if (!this.stalled) log.warn({ ref, why }, 'the coordinator could not take an entry; it is sent again later')
    this.stalled = true
  }

  /** The coordinator refused one of our frames: a refused outbox entry would be refused forever, so it goes. */
  refused(ref: string | null, why: string): void {
    this.ctx.log.error({ ref, why }, 'the coordinator refused a message')
    if (ref && this.inFlight.delete(ref)) {
      this.outbox?.remove([ref])
      this.pump()
    }
  }

  /** Sends every unacked entry again, in order, when one waited longer than resendSeconds or was refused for now. */
  private resendOverdue(): void {
    if (!this.socket.connection || (this.inFlight.size === 0 && !this.stalled)) return
    const cutoff = this.ctx.now().getTime() - this.ctx.config.coordinator.resendSeconds * 1000
    const overdue = this.stalled || [...this.inFlight.values()].some((sentAt) => sentAt <= cutoff)
    if (!overdue) return
    this.ctx.log.info({ unacked: this.inFlight.size }, 'sending unacked entries again')
    this.restart()
    this.pump()
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
    if (Buffer.byteLength(text) > this.ctx.config.coordinator.maxFrameBytes) {
      text = JSON.stringify({ ...message, data: { truncated: true, bytes: Buffer.byteLength(text) } })
    }
    this.enqueue({ id: event.id, kind: 'event', type: event.type, message: text })
  }
}

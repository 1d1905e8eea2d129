// Every fact change, prune and pull becomes an AgentEvent on this bus; metrics, the audit log and
// the coordinator outbox all listen here, so no trigger or executor talks to them directly.
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'

export type EventType =
  | 'agent.started'
  | 'agent.stopping'
  | 'prune.started'
  | 'prune.image'
  | 'prune.finished'
  | 'prewarm.started'
  | 'prewarm.finished'
  | 'pull.progress'
  | 'pull.finished'
  | 'pull.failed'
  | 'disk.threshold'
  | 'compat.changed'
  | 'collector.failed'
  | 'collector.recovered'

export interface AgentEvent {
  id: string
  type: EventType
  ts: string
  data: Record<string, unknown>
}

export class EventBus extends EventEmitter {
  constructor(private readonly now: () => Date = () => new Date()) {
    super()
    this.setMaxListeners(50)
  }

  publish(type: EventType, data: Record<string, unknown> = {}): AgentEvent {
    const event: AgentEvent = { id: randomUUID(), type, ts: this.now().toISOString(), data }
    this.emit('event', event)
    return event
  }

  subscribe(listener: (event: AgentEvent) => void): () => void {
    this.on('event', listener)
    return () => this.off('event', listener)
  }
}

// Every fact change, prune and pull becomes an AgentEvent on this bus; metrics, the audit log and
// the coordinator outbox all listen here, so no trigger or executor talks to them directly.
// The payload of each event type is fixed by its schema in protocol-events.ts.
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import type { EventMap, EventType } from '../protocol-events.js'
import { systemClock, type Clock } from './clock.js'

export type { EventMap, EventType } from '../protocol-events.js'

/** one event as published: a union discriminated by `type`, so `data` narrows with it */
export type AgentEvent = { [K in EventType]: { id: string; type: K; ts: string; data: EventMap[K] } }[EventType]

/** the event of one type */
export type EventOf<K extends EventType> = Extract<AgentEvent, { type: K }>

export class EventBus extends EventEmitter {
  constructor(private readonly now: Clock = systemClock) {
    super()
    this.setMaxListeners(50)
  }

  publish<K extends EventType>(type: K, data: EventMap[K]): EventOf<K> {
    const event = { id: randomUUID(), type, ts: this.now().toISOString(), data } as EventOf<K>
    this.emit('event', event)
    return event
  }

  subscribe(listener: (event: AgentEvent) => void): () => void {
    this.on('event', listener)
    return () => this.off('event', listener)
  }
}

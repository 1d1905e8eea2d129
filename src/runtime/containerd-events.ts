// containerd's event stream (Events.Subscribe) as runtime events. containerd keeps no event
// history, so a stream cannot resume from `since`: the collector refreshes on every (re)connect,
// which is what it does after any gap. Task events name only the container: its image comes from
// the container list the runtime last read, or from the container's create event.
import type { ClientReadableStream } from '@grpc/grpc-js'
import { timestampMs, type ContainerdClient } from './containerd-client.js'
import type { EventPayload, Timestamp, WireEnvelope } from './containerd-wire.js'
import type { OpenEvents, RuntimeEvent, RuntimeEventHandlers } from './runtime.js'

/** containerd topic → the runtime action the collector knows (Docker's names) */
const ACTIONS: Record<string, { type: RuntimeEvent['type']; action: string }> = {
  '/containers/create': { type: 'container', action: 'create' },
  '/containers/delete': { type: 'container', action: 'destroy' },
  '/tasks/start': { type: 'container', action: 'start' },
  '/tasks/exit': { type: 'container', action: 'die' },
  '/images/create': { type: 'image', action: 'pull' },
  '/images/update': { type: 'image', action: 'tag' },
  '/images/delete': { type: 'image', action: 'delete' },
}

export interface Envelope {
  timestamp?: Timestamp | null
  namespace?: string
  topic?: string
  payload: EventPayload | null
}

/** Pure: one envelope as a runtime event; undefined for a topic the agent does not watch */
export function toRuntimeEvent(
  e: Envelope,
  imageOf: (containerId: string) => string | undefined,
): RuntimeEvent | undefined {
  const kind = ACTIONS[e.topic ?? '']
  if (!kind) return undefined
  const p = e.payload ?? {}
  const id: string | undefined = kind.type === 'image' ? p.name : (p.containerId ?? p.id)
  const image: string | undefined = kind.type === 'container' ? p.image || (id ? imageOf(id) : undefined) : undefined
  const atMs = timestampMs(e.timestamp) ?? undefined
  return {
    type: kind.type,
    action: kind.action,
    ...(id ? { id } : {}),
    ...(image ? { image } : {}),
    ...(atMs !== undefined ? { atMs } : {}),
  }
}

export function openContainerdEvents(
  client: ContainerdClient,
  opts: { signal: AbortSignal },
  handlers: RuntimeEventHandlers,
  imageOf: (containerId: string) => string | undefined,
  onCreate: (containerId: string, image: string) => void,
): Promise<OpenEvents> {
  // Only this namespace's events: another namespace's images are not ours to count.
  const filters = Object.keys(ACTIONS).map((topic) => `namespace==${client.namespace},topic==${topic}`)
  const stream: ClientReadableStream<WireEnvelope> = client.stream('events', 'Subscribe', { filters })
  // gRPC sends a stream's headers with its first message, so there is no "subscribed" signal to
  // wait for: the caller checks containerd answers first, and a failure after that ends the stream.
  let done = false
  let resolveEnded!: (reason: string) => void
  const ended = new Promise<string>((r) => (resolveEnded = r))
  const end = (reason: string) => {
    if (done) return
    done = true
    resolveEnded(reason)
  }
  opts.signal.addEventListener('abort', () => stream.cancel(), { once: true })
  stream.on('data', (m: WireEnvelope) => {
    const payload = m.event ? client.decodeAny(m.event) : null
    if (m.topic === '/containers/create' && payload?.id && payload.image) onCreate(payload.id, payload.image)
    const e = toRuntimeEvent({ ...m, payload }, imageOf)
    if (e) handlers.onEvent(e)
  })
  stream.on('error', (err: Error & { details?: string }) =>
    end(`containerd event stream: ${err.details || err.message}`),
  )
  stream.on('end', () => end('containerd ended the event stream'))
  return Promise.resolve({ ended })
}

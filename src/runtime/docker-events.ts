// Docker's /events stream, read line by line into runtime events.
import type Dockerode from 'dockerode'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import type { DockerApi } from './docker-api.js'
import type { OpenEvents, RuntimeEvent, RuntimeEventHandlers } from './runtime.js'

/** the fields of a /events message that are read */
export interface DockerEvent {
  Type: string
  Action: string
  Actor?: { ID?: string; Attributes?: Record<string, string> }
  /** deprecated in the Engine API, still sent by older daemons */
  id?: string
  from?: string
  time?: number
  timeNano?: number
}

export const WATCHED_EVENTS = {
  container: ['create', 'start', 'die', 'destroy'],
  image: ['pull', 'tag', 'untag', 'delete', 'load', 'import'],
} as const

/** Pure: one Docker event as a runtime event; undefined for a type the agent does not watch */
export function toRuntimeEvent(e: DockerEvent): RuntimeEvent | undefined {
  if (e.Type !== 'container' && e.Type !== 'image') return undefined
  const atMs =
    typeof e.timeNano === 'number'
      ? Math.floor(e.timeNano / 1e6)
      : typeof e.time === 'number'
        ? e.time * 1000
        : undefined
  const id = e.Actor?.ID ?? e.id
  const image = e.Type === 'container' ? (e.Actor?.Attributes?.image ?? e.from) : undefined
  return {
    type: e.Type,
    action: e.Action,
    ...(id !== undefined ? { id } : {}),
    ...(image !== undefined ? { image } : {}),
    ...(atMs !== undefined ? { atMs } : {}),
  }
}

export async function openDockerEvents(
  api: DockerApi,
  opts: { since?: number; signal: AbortSignal },
  handlers: RuntimeEventHandlers,
): Promise<OpenEvents> {
  // Open for as long as the agent runs, silent while nothing happens: no deadline, the agent's
  // signal ends it. `since` is left out rather than sent empty when there is none.
  const stream = (await api.docker.getEvents({
    filters: { type: Object.keys(WATCHED_EVENTS), event: Object.values(WATCHED_EVENTS).flat() },
    ...(opts.since !== undefined ? { since: opts.since } : {}),
    abortSignal: opts.signal,
  } as Dockerode.GetEventsOptions)) as Readable
  const ended = new Promise<string>((resolve) => {
    const lines = createInterface({ input: stream, crlfDelay: Infinity })
    lines.on('line', (line: string) => {
      const event = parseEvent(line)
      const e = event && toRuntimeEvent(event)
      if (e) handlers.onEvent(e)
    })
    let done = false
    const end = (reason: string) => {
      if (done) return
      done = true
      resolve(reason)
    }
    stream.on('end', () => end('dockerd ended the stream'))
    stream.on('close', () => end('the connection to dockerd closed'))
    stream.on('error', (err: Error) => end(err.message))
    // readline repeats the stream's error on the interface, where an unheard one would end the process
    lines.on('error', (err: Error) => end(err.message))
  })
  return { ended }
}

/** one line of the stream; a line that is not JSON is skipped rather than ending the stream */
function parseEvent(line: string): DockerEvent | undefined {
  try {
    const value = JSON.parse(line) as DockerEvent
    return value && typeof value.Type === 'string' && typeof value.Action === 'string' ? value : undefined
  } catch {
    return undefined
  }
}

// Docker's event stream, kept open for as long as the agent runs: the image collector refreshes
// when containers or images change instead of polling. When dockerd goes away (restart, upgrade,
// crash) the stream is reopened with capped exponential backoff, resuming from the last event seen.
import split2 from 'split2'
import { backOff } from 'exponential-backoff'
import type { Logger } from 'pino'
import type { DockerConnection } from './docker-connection.js'

/** the fields of a /events message that the agent reads */
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

export interface DockerEventHandlers {
  onEvent(event: DockerEvent): void
  /** the stream is open (again): what happened while it was closed is unknown, so refresh */
  onConnected(): void
  /** the stream closed or could not be opened */
  onDisconnected(reason: string): void
}

class Stopped extends Error {}

export class DockerEventStream {
  readonly name = 'docker-events'
  private stopped = true
  private abort: AbortController | null = null
  private lastEventTime: number | null = null
  private failures = 0

  constructor(
    private readonly conn: DockerConnection,
    private readonly handlers: DockerEventHandlers,
    private readonly log: Logger,
    private readonly backoff = { startingDelayMs: 500, maxDelayMs: 5000 },
  ) {}

  async start(): Promise<void> {
    this.stopped = false
    void this.run()
  }

  /** does not wait for a backoff delay to end: the loop sees `stopped` when it wakes */
  async stop(): Promise<void> {
    this.stopped = true
    this.abort?.abort()
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let opened: { ended: Promise<string> }
      try {
        opened = await backOff(() => this.open(), {
          numOfAttempts: Number.MAX_SAFE_INTEGER,
          startingDelay: this.backoff.startingDelayMs,
          maxDelay: this.backoff.maxDelayMs,
          jitter: 'full',
          retry: (err: Error) => {
            if (this.stopped || err instanceof Stopped) return false
            this.failures++
            if (this.failures === 1) this.handlers.onDisconnected(err.message)
            if (this.failures === 1 || this.failures % 20 === 0) {
              this.log.warn({ failures: this.failures, err: err.message }, 'cannot open the Docker event stream; retrying')
            }
            return true
          },
        })
      } catch {
        return // stopped
      }
      if (this.failures > 0) this.log.info({ failures: this.failures }, 'Docker event stream reopened')
      this.failures = 0
      this.handlers.onConnected()
      const reason = await opened.ended
      if (this.stopped) return
      this.log.warn({ reason }, 'Docker event stream closed; reopening')
      // The daemon that closed it may come back as another version: negotiate again.
      this.conn.forget()
      this.handlers.onDisconnected(reason)
    }
  }

  /** opens the stream; resolves once it is open, with a promise of why it ends (boxed, or await would wait for it) */
  private async open(): Promise<{ ended: Promise<string> }> {
    if (this.stopped) throw new Stopped()
    const docker = await this.conn.streamClient()
    this.abort = new AbortController()
    const stream = await docker.getEvents({
      filters: { type: Object.keys(WATCHED_EVENTS), event: Object.values(WATCHED_EVENTS).flat() },
      // Resume where the last stream ended, so events of a short gap are not lost.
      ...(this.lastEventTime !== null ? { since: String(this.lastEventTime) } : {}),
      abortSignal: this.abort.signal,
    } as object) as NodeJS.ReadableStream
    const ended = new Promise<string>((resolve) => {
      const lines = stream.pipe(split2(parseEvent))
      lines.on('data', (event: DockerEvent) => {
        if (typeof event.time === 'number') this.lastEventTime = event.time
        // One event that trips a handler must not end the stream or the process.
        try {
          this.handlers.onEvent(event)
        } catch (err) {
          this.log.warn({ err: (err as Error).message, event: event.Action }, 'failed to handle a Docker event')
        }
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
      lines.on('error', (err: Error) => {
        ;(stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.()
        end(`unreadable event stream: ${err.message}`)
      })
    })
    return { ended }
  }
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

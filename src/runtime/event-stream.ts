// The runtime's event stream, kept open for as long as the agent runs: the image collector
// refreshes when containers or images change instead of polling. When the runtime goes away
// (restart, upgrade, crash) the stream is reopened with capped exponential backoff, resuming from
// the last event seen.
import { backOff } from 'exponential-backoff'
import type { Logger } from 'pino'
import type { ContainerRuntime, OpenEvents, RuntimeEvent } from './runtime.js'

export interface RuntimeEventHandlersWithState {
  onEvent(event: RuntimeEvent): void
  /** the stream is open (again): what happened while it was closed is unknown, so refresh */
  onConnected(): void
  /** the stream closed or could not be opened */
  onDisconnected(reason: string): void
}

class Stopped extends Error {}

export class RuntimeEventStream {
  readonly name = 'runtime-events'
  private stopped = true
  private abort: AbortController | null = null
  private lastEventMs: number | null = null
  private failures = 0

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly handlers: RuntimeEventHandlersWithState,
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
      let opened: OpenEvents
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
              this.log.warn(
                { failures: this.failures, err: err.message },
                'cannot open the runtime event stream; retrying',
              )
            }
            return true
          },
        })
      } catch {
        return // stopped
      }
      if (this.failures > 0) this.log.info({ failures: this.failures }, 'runtime event stream reopened')
      this.failures = 0
      this.handlers.onConnected()
      const reason = await opened.ended
      if (this.stopped) return
      this.log.warn({ reason }, 'runtime event stream closed; reopening')
      this.handlers.onDisconnected(reason)
    }
  }

  /** opens the stream; resolves once it is open, with a promise of why it ends (boxed, or await would wait for it) */
  private async open(): Promise<OpenEvents> {
    if (this.stopped) throw new Stopped()
    this.abort = new AbortController()
    // Resume where the last stream ended, so events of a short gap are not lost.
    const since = this.lastEventMs !== null ? Math.floor(this.lastEventMs / 1000) : undefined
    return this.runtime.openEvents(
      { since, signal: this.abort.signal },
      {
        onEvent: (event) => {
          if (typeof event.atMs === 'number') this.lastEventMs = event.atMs
          // One event that trips a handler must not end the stream or the process.
          try {
            this.handlers.onEvent(event)
          } catch (err) {
            this.log.warn({ err: (err as Error).message, event: event.action }, 'failed to handle a runtime event')
          }
        },
      },
    )
  }
}

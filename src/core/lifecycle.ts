// start()/stop() per component: constructors only store dependencies, work begins in start(),
// timers and sockets end in stop(). A stop during start-up stops what already started.
// Components started with startRetrying() do not abort the process when their start fails (Docker
// not up yet, a state file briefly locked): the failure is reported and the start retried with
// backoff, while the rest of the agent runs.
import type { Logger } from 'pino'
import { backoffDelay, type BackoffPolicy } from '../backoff.js'
import { systemClock, type Clock } from './clock.js'

export interface Component {
  readonly name: string
  start(): Promise<void>
  stop(): Promise<void>
}

/** a component whose start failed and is waiting for its next try */
export interface FailingComponent {
  component: string
  error: string
  /** failed starts so far */
  attempts: number
  /** when the next try is due */
  retryAt: string
}

export interface LifecycleEvents {
  failed?: (f: { component: string; error: string; attempt: number; retryInSeconds: number }) => void
  started?: (s: { component: string; attempts: number }) => void
}

export const DEFAULT_RESTART_BACKOFF: BackoffPolicy = { baseMs: 1000, maxMs: 60_000 }

export class Lifecycle {
  private readonly started: Component[] = []
  private readonly failing = new Map<Component, FailingComponent & { timer: NodeJS.Timeout }>()
  private stopping = false

  constructor(
    private readonly log: Logger,
    private readonly events: LifecycleEvents = {},
    private readonly retry: BackoffPolicy = DEFAULT_RESTART_BACKOFF,
    private readonly now: Clock = systemClock,
  ) {}

  /** starts each in order; the first that fails ends start-up with its error */
  async start(components: Component[]): Promise<void> {
    for (const component of components) {
      if (this.stopping) return
      this.started.push(component)
      await component.start()
      this.log.debug({ component: component.name }, 'started')
    }
  }

  /** starts each in order; one that fails is reported and retried with backoff until it starts */
  async startRetrying(components: Component[]): Promise<void> {
    for (const component of components) {
      if (this.stopping) return
      await this.tryStart(component, 0)
    }
  }

  /** the components whose start failed and that have not started since */
  failingComponents(): FailingComponent[] {
    return [...this.failing.values()].map(({ timer: _timer, ...f }) => f)
  }

  async stop(): Promise<void> {
    this.stopping = true
    for (const f of this.failing.values()) clearTimeout(f.timer)
    this.failing.clear()
    for (const component of this.started.reverse()) {
      try {
        await component.stop()
      } catch (err) {
        this.log.error({ component: component.name, err: (err as Error).message }, 'failed to stop cleanly')
      }
    }
    this.started.length = 0
  }

  private async tryStart(component: Component, failures: number): Promise<void> {
    try {
      await component.start()
    } catch (err) {
      // The component cleans up after its own failed start; its stop() is for a started one.
      if (this.stopping) return
      this.scheduleRetry(component, failures + 1, (err as Error).message)
      return
    }
    if (this.stopping) {
      // stop() ran while this start was in flight: it did not see this component, so stop it here.
      await this.stopQuietly(component)
      return
    }
    this.failing.delete(component)
    this.started.push(component)
    this.log.debug({ component: component.name }, 'started')
    if (failures > 0) {
      this.log.info({ component: component.name, attempts: failures + 1 }, `${component.name} started after failing to`)
      this.events.started?.({ component: component.name, attempts: failures + 1 })
    }
  }

  private scheduleRetry(component: Component, attempt: number, error: string): void {
    const delayMs = backoffDelay(attempt - 1, this.retry)
    const retryInSeconds = delayMs / 1000
    const fields = { component: component.name, attempt, err: error, retryInSeconds }
    this.log.error(fields, `${component.name} failed to start; retrying`)
    const timer = setTimeout(() => void this.tryStart(component, attempt), delayMs)
    timer.unref()
    const retryAt = new Date(this.now().getTime() + delayMs).toISOString()
    this.failing.set(component, { component: component.name, error, attempts: attempt, retryAt, timer })
    this.events.failed?.({ component: component.name, error, attempt, retryInSeconds })
  }

  private async stopQuietly(component: Component): Promise<void> {
    try {
      await component.stop()
    } catch (err) {
      this.log.debug({ component: component.name, err: (err as Error).message }, 'stop after a failed start failed too')
    }
  }
}

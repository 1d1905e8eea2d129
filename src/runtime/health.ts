// The runtime's health, from a cheap periodic ping with its own short timeout rather than from
// whichever call happened last: a frozen engine (it accepts connections and never answers) shows
// as unreachable within one interval plus the ping timeout, not after a full call timeout.
import type { Logger } from 'pino'
import type { ContainerRuntime } from './runtime.js'

export class RuntimeHealthLoop {
  readonly name = 'runtime-health'
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private wasDown = false

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.schedule(0)
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    await this.running
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.running = this.check().finally(() => {
        this.running = null
        if (this.timer) this.schedule(this.intervalMs)
      })
    }, ms)
    this.timer.unref()
  }

  private async check(): Promise<void> {
    try {
      await this.runtime.ping()
      if (this.wasDown) this.log.info({ runtime: this.runtime.kind }, 'the container runtime answers again')
      this.wasDown = false
    } catch (err) {
      if (!this.wasDown)
        this.log.warn(
          { runtime: this.runtime.kind, err: (err as Error).message },
          'the container runtime does not answer',
        )
      this.wasDown = true
    }
  }
}

// One wrapper runs every collector: it times it, records success, never lets two runs overlap,
// and logs failure streaks once (first failure, then every 10th, then recovery).
import type { Logger } from 'pino'
import type { SnapshotStore } from './snapshot.js'
import { systemClock, type Clock } from './clock.js'

export interface Collector {
  readonly name: string
  /** gathers facts and writes them into the snapshot; throws when the source failed */
  collect(): Promise<void>
}

export class CollectorLoop {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private rerun = false
  private failures = 0
  private stopped = true

  constructor(
    private readonly collector: Collector,
    private readonly intervalMs: number,
    private readonly store: SnapshotStore,
    private readonly log: Logger,
    private readonly now: Clock = systemClock,
  ) {}

  get name(): string {
    return this.collector.name
  }

  async start(): Promise<void> {
    this.stopped = false
    void this.refresh()
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    await this.running
  }

  /** collects now; a call while a run is in flight asks for one more run after it, not a second one at once */
  refresh(): Promise<void> {
    if (this.running) {
      this.rerun = true
      return this.running
    }
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.running = this.runOnce().finally(() => {
      this.running = null
      if (this.stopped) return
      if (this.rerun) {
        this.rerun = false
        void this.refresh()
      } else {
        this.timer = setTimeout(() => void this.refresh(), this.intervalMs)
        this.timer.unref()
      }
    })
    return this.running
  }

  private async runOnce(): Promise<void> {
    const started = process.hrtime.bigint()
    try {
      await this.collector.collect()
      this.store.recordCollector(this.name, {
        success: true,
        durationSeconds: elapsed(started),
        at: this.now().toISOString(),
      })
      if (this.failures > 0) this.log.info({ collector: this.name, failures: this.failures }, 'collector recovered')
      this.failures = 0
    } catch (err) {
      const error = (err as Error).message
      this.failures++
      this.store.recordCollector(this.name, {
        success: false,
        durationSeconds: elapsed(started),
        at: this.now().toISOString(),
        error,
        failures: this.failures,
      })
      if (this.failures === 1 || this.failures % 10 === 0) {
        this.log.warn({ collector: this.name, failures: this.failures, err: error }, `collector ${this.name} failed`)
      }
    }
  }
}

function elapsed(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9
}

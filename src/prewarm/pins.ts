// Keeps the runtime's pins on the wanted set, where the runtime pins (containerd: the CRI pinned
// label, so the kubelet's image GC leaves a prewarmed image alone while it is wanted). Reconciled
// after every prewarm run and on the image refresh interval, which also catches images held or
// released by a rollout and names that came back; a runtime that cannot pin makes this a no-op.
import type { Logger } from 'pino'
import type { Component } from '../core/lifecycle.js'
import type { ContainerRuntime } from '../runtime/runtime.js'
import { RuntimeUnavailableError } from '../runtime/runtime.js'

export class WantedPins implements Component {
  readonly name = 'prewarm-pins'
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> = Promise.resolve()

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly wanted: () => string[],
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    if (!this.runtime.pinWanted) return
    void this.sync()
    this.timer = setInterval(() => void this.sync(), this.intervalMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.running
  }

  /** one reconciliation at a time; never throws (the next one tries again) */
  sync(): Promise<void> {
    const pin = this.runtime.pinWanted?.bind(this.runtime)
    if (!pin) return Promise.resolve()
    this.running = this.running.then(async () => {
      try {
        const { pinned, unpinned } = await pin(this.wanted())
        if (pinned.length || unpinned.length) {
          this.log.info({ runtime: this.runtime.kind, pinned, unpinned }, 'wanted images pinned in the runtime')
        }
      } catch (err) {
        const level = err instanceof RuntimeUnavailableError ? 'debug' : 'warn'
        this.log[level]({ err: (err as Error).message }, 'cannot pin the wanted images')
      }
    })
    return this.running
  }
}

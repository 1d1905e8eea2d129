// Publishes `gpu.health` once per change of the host's GPU health (state, reasons, per-GPU states),
// not per collection, so the coordinator hears of a failing GPU or a driver/library mismatch once.
// The first judgement is published only when it is not ok.
import type { EventBus, EventMap } from '../core/events.js'
import type { Component } from '../core/lifecycle.js'
import type { SnapshotStore } from '../core/snapshot.js'
import { judgeHost, type HostGpuHealth } from './health.js'

export class GpuHealthWatcher implements Component {
  readonly name = 'gpu-health-watcher'
  private last: string | null = null
  private readonly onChange = (part: string) => {
    if (part === 'gpu') this.check()
  }

  constructor(
    private readonly store: SnapshotStore,
    private readonly bus: EventBus,
  ) {}

  async start(): Promise<void> {
    this.store.on('change', this.onChange)
  }

  async stop(): Promise<void> {
    this.store.off('change', this.onChange)
  }

  check(): void {
    const gpu = this.store.get().gpu
    // No GPU facts for another reason (a timeout, no nvidia-smi) says nothing about health.
    const health = judgeHost(gpu)
    if (!gpu.available && health.reasons.length === 0) return
    const key = JSON.stringify(summary(health))
    if (key === this.last) return
    const first = this.last === null
    this.last = key
    if (first && health.state === 'ok') return
    this.bus.publish('gpu.health', { ...summary(health), ...(health.advice && { advice: health.advice }) })
  }
}

function summary(h: HostGpuHealth): Omit<EventMap['gpu.health'], 'advice'> {
  return {
    state: h.state,
    reasons: h.reasons,
    gpus: h.gpus.map((g) => ({ index: g.index, uuid: g.uuid, state: g.state, reasons: g.reasons })),
  }
}

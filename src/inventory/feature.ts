// Disk and image inventory: the disk and image collectors, the usage tracker, the runtime's event
// stream and its health ping, wired together for the agent; and the same parts run once for
// one-shot commands.
import type { Logger } from 'pino'
import type { AgentContext, FeatureParts } from '../core/feature.js'
import { systemClock, type Clock } from '../core/clock.js'
import type { AgentConfig } from '../config.js'
import type { Component } from '../core/lifecycle.js'
import { CollectorLoop, type Collector } from '../core/collector.js'
import { DiskCollector } from './disk.js'
import { DiskBreakdownCollector, LOG_CAP_ADVICE } from './disk-breakdown.js'
import { createRuntime, runtimeSocket } from '../runtime/create.js'
import { runtimeUnreachableHint } from '../runtime/unreachable-hint.js'
import { RuntimeEventStream } from '../runtime/event-stream.js'
import { RuntimeHealthLoop } from '../runtime/health.js'
import type { ContainerRuntime, RuntimeHealth } from '../runtime/runtime.js'
import { ImageCollector } from './images.js'
import { HostFactsCollector } from './host-facts.js'
import { SnapshotStore, type HostSnapshot } from '../core/snapshot.js'
import { UsageTracker } from './usage.js'

const INVENTORY_COLLECTORS = ['disk', 'images']

/** a burst of events (a pull of many layers, `docker compose up`) costs one refresh */
const EVENT_COALESCE_MS = 500

export function inventoryFeature(ctx: AgentContext): FeatureParts {
  const { config, store, log, runtime } = ctx
  let loggedReason: string | null = null
  runtime.onHealthChange((h) => {
    const hint = h.reachable ? null : runtimeUnreachableHint(config, h.reason ?? '')
    recordHealth(store, { ...h, kind: runtime.kind, ...(hint ? { hint } : {}) }, ctx.now)
    // once per reason: a daemon that stays away is not logged on every call that finds it so
    if (h.reachable || h.reason === loggedReason) {
      if (h.reachable) loggedReason = null
      return
    }
    loggedReason = h.reason ?? ''
    const engine = runtime.kind === 'containerd' ? 'containerd' : 'Docker'
    log.warn({ socket: runtimeSocket(config), err: h.reason }, `${engine} is unreachable${hint ? `: ${hint}` : ''}`)
  })
  const usage = new UsageTracker({
    stateDir: config.stateDir,
    log,
    now: ctx.now,
    write: (fn) => ctx.state.write('usage', fn),
  })
  ctx.state.onRetry(() => usage.flush())
  const images = new ImageCollector(runtime, usage, store, ctx.now)
  const disk = new DiskCollector(config.disk.path, runtime, store)
  const imageLoop = new CollectorLoop(images, config.docker.refreshIntervalSeconds * 1000, store, log, ctx.now)
  const diskLoop = new CollectorLoop(disk, config.disk.checkIntervalSeconds * 1000, store, log, ctx.now)
  // Not among the collectors readiness waits for: it is slow, and nothing else depends on it.
  const breakdown = new DiskBreakdownCollector(runtime, store, {
    topLogs: config.disk.breakdownTopLogs,
    now: ctx.now,
    log,
    logWarnBytes: config.disk.logWarnBytes,
    onLargeLog: (l, logWarnBytes) =>
      ctx.bus.publish('disk.log_large', {
        containerId: l.id,
        name: l.name,
        state: l.state,
        logBytes: l.logBytes,
        logWarnBytes,
        advice: LOG_CAP_ADVICE,
      }),
  })
  const breakdownMs = config.disk.breakdownIntervalSeconds * 1000
  const breakdownLoop = new CollectorLoop(breakdown, breakdownMs, store, log, ctx.now)

  let coalesce: NodeJS.Timeout | null = null
  const refreshSoon = () => {
    if (coalesce) return
    coalesce = setTimeout(() => {
      coalesce = null
      void imageLoop.refresh()
      void diskLoop.refresh()
    }, EVENT_COALESCE_MS)
    coalesce.unref()
  }
  const events = new RuntimeEventStream(
    runtime,
    {
      onEvent: (e) => {
        if (images.noteEvent(e)) refreshSoon()
      },
      onConnected: refreshSoon,
      onDisconnected: () => void imageLoop.refresh(),
    },
    log,
  )
  // Every image with its facts; /v1/status carries only the summary.
  ctx.http.get('/v1/images', () => ({
    status: 200,
    body: { takenAt: store.get().takenAt, images: store.get().images },
  }))
  // On demand: measured now (a run in flight is joined), then answered.
  ctx.http.post('/v1/disk/breakdown', async () => {
    await breakdownLoop.refresh()
    const s = store.get()
    const status = s.collectors[breakdown.name]
    if (!status?.success) {
      return { status: 503, body: { error: `disk breakdown failed: ${status?.error ?? 'not measured'}` } }
    }
    return { status: 200, body: s.diskBreakdown }
  })
  const stopCoalescing: Component = {
    name: 'inventory-refresh',
    start: async () => {},
    stop: async () => {
      if (coalesce) clearTimeout(coalesce)
    },
  }
  const health = new RuntimeHealthLoop(runtime, config.docker.pingIntervalSeconds * 1000, log)
  // Read at start and on SIGHUP only; not among the collectors readiness waits for.
  const host = new HostFactsCollector(store, log, undefined, ctx.now)
  // Stopped in reverse: health and events first, then the loops, then the usage file is flushed.
  const components = [
    host,
    usage,
    loopComponent(diskLoop),
    loopComponent(imageLoop),
    loopComponent(breakdownLoop),
    stopCoalescing,
    events,
    health,
  ]
  return { components, collectors: INVENTORY_COLLECTORS }
}

/**
 * The runtime's health into the snapshot. Unreachable also marks the image collector failed at
 * once: its own run would wait a full call timeout on a frozen engine before saying so.
 */
function recordHealth(store: SnapshotStore, h: HostSnapshot['docker'] & RuntimeHealth, now: Clock): void {
  store.set('docker', h)
  if (!h.reachable && store.get().collectors.images?.success !== false) {
    const error = h.reason ?? 'unreachable'
    store.recordCollector('images', { success: false, durationSeconds: 0, at: now().toISOString(), error })
  }
}

function loopComponent(loop: CollectorLoop): Component {
  return { name: `collector:${loop.name}`, start: () => loop.start(), stop: () => loop.stop() }
}

/**
 * Disk, images and usage, once, for commands that run beside (or without) the agent, such as
 * `gpuhost prune`: images are ordered by the same durable last-used record the agent keeps, and
 * what this look learned is written back to it. Docker unreachable is not thrown: the result says
 * `docker.reachable: false` and `collectors.images.success: false`, and the caller decides.
 */
export async function takeSnapshotOnce(
  config: AgentConfig,
  log: Logger,
  opts: { now?: Clock; runtime?: ContainerRuntime } = {},
): Promise<HostSnapshot> {
  const now = opts.now ?? systemClock
  const runtime = opts.runtime ?? createRuntime(config)
  const store = new SnapshotStore(INVENTORY_COLLECTORS, now)
  const usage = new UsageTracker({ stateDir: config.stateDir, log, now })
  usage.load()
  await runOnce(new ImageCollector(runtime, usage, store, now), store, now)
  await runOnce(new DiskCollector(config.disk.path, runtime, store), store, now)
  const health = runtime.health()
  const hint = health.reachable ? null : runtimeUnreachableHint(config, health.reason ?? '')
  store.set('docker', { ...health, kind: runtime.kind, ...(hint ? { hint } : {}) })
  usage.flush()
  return store.get()
}

async function runOnce(collector: Collector, store: SnapshotStore, now: Clock): Promise<void> {
  const started = process.hrtime.bigint()
  const durationSeconds = () => Number(process.hrtime.bigint() - started) / 1e9
  try {
    await collector.collect()
    store.recordCollector(collector.name, {
      success: true,
      durationSeconds: durationSeconds(),
      at: now().toISOString(),
    })
  } catch (err) {
    store.recordCollector(collector.name, {
      success: false,
      durationSeconds: durationSeconds(),
      at: now().toISOString(),
      error: (err as Error).message,
    })
  }
}

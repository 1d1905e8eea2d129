// Where the space under Docker's root went: images (unique and shared), containers' writable layers
// (running and stopped), container logs, build cache, volumes (in use and dangling). The runtime's
// accounting walks every layer, so this runs on its own slow interval (disk.breakdownIntervalSeconds)
// and on demand (POST /v1/disk/breakdown), never on a scrape.
import type { Logger } from 'pino'
import type { Collector } from '../core/collector.js'
import type { Clock } from '../core/clock.js'
import type { ContainerLog, DiskBreakdown, SnapshotStore } from '../core/snapshot.js'
import type { ContainerRuntime, RuntimeDiskUsage } from '../runtime/runtime.js'

/** the Docker log options that would have capped a log: gpuhost never truncates a running container's log */
export const LOG_CAP_ADVICE =
  'cap it with --log-opt max-size=100m --log-opt max-file=3 on the container, ' +
  'or "log-opts": {"max-size": "100m", "max-file": "3"} in /etc/docker/daemon.json for new containers'

/**
 * Pure: the runtime's accounting by kind. A layer shared by several images is in images_shared once;
 * what only one image holds is in images_unique. A container in any state but running (exited,
 * created, dead, paused) keeps its writable layer on disk: containers_stopped.
 */
export function breakdownOf(
  usage: RuntimeDiskUsage,
  opts: { takenAt: string; durationSeconds: number; topLogs: number; logWarnBytes?: number | null },
): DiskBreakdown {
  const sum = <T>(items: T[], pick: (x: T) => number) => items.reduce((s, x) => s + pick(x), 0)
  const unique = sum(usage.images, (i) => Math.max(0, i.sizeBytes - i.sharedSizeBytes))
  const running = usage.containers.filter((c) => c.state === 'running')
  const stopped = usage.containers.filter((c) => c.state !== 'running')
  const logs = usage.containers
    .filter((c) => c.logBytes !== null)
    .map((c) => ({ id: c.id, name: c.name, state: c.state, logBytes: c.logBytes as number }))
    .sort((a, b) => b.logBytes - a.logBytes || a.name.localeCompare(b.name))
  return {
    takenAt: opts.takenAt,
    durationSeconds: opts.durationSeconds,
    imagesBytes: usage.imagesBytes,
    bytes: {
      images_unique: unique,
      images_shared: Math.max(0, usage.imagesBytes - unique),
      containers_running: sum(running, (c) => c.sizeRwBytes),
      containers_stopped: sum(stopped, (c) => c.sizeRwBytes),
      logs: sum(logs, (c) => c.logBytes),
      build_cache: usage.buildCacheBytes,
      volumes_in_use: sum(
        usage.volumes.filter((v) => v.refCount > 0),
        (v) => v.sizeBytes,
      ),
      volumes_dangling: sum(
        usage.volumes.filter((v) => v.refCount === 0),
        (v) => v.sizeBytes,
      ),
    },
    topLogs: logs.slice(0, opts.topLogs),
    largeLogs: opts.logWarnBytes ? logs.filter((l) => l.logBytes > opts.logWarnBytes!) : [],
  }
}

export class DiskBreakdownCollector implements Collector {
  readonly name = 'disk-breakdown'

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly store: SnapshotStore,
    private readonly opts: {
      topLogs: number
      now: Clock
      log: Logger
      logWarnBytes?: number | null
      /** called with a log that crossed logWarnBytes: once, until it is back under */
      onLargeLog?: (log: ContainerLog, logWarnBytes: number) => void
    },
  ) {}

  /** containers already warned about, so a log that stays large is announced once */
  private readonly warned = new Set<string>()

  async collect(): Promise<void> {
    const takenAt = this.opts.now().toISOString()
    const started = process.hrtime.bigint()
    const usage = await this.runtime.diskUsage()
    const durationSeconds = Number(process.hrtime.bigint() - started) / 1e9
    const { topLogs, logWarnBytes } = this.opts
    const breakdown = breakdownOf(usage, { takenAt, durationSeconds, topLogs, logWarnBytes })
    // The cost of the runtime's accounting on this host, so an operator can size the interval.
    this.opts.log.info({ durationSeconds, bytes: breakdown.bytes }, 'disk breakdown measured')
    this.store.set('diskBreakdown', breakdown)
    const large = new Set(breakdown.largeLogs.map((l) => l.id))
    for (const l of breakdown.largeLogs) {
      if (this.warned.has(l.id) || !logWarnBytes) continue
      this.warned.add(l.id)
      this.opts.log.warn({ container: l.name, logBytes: l.logBytes, logWarnBytes }, `container log large: ${l.name}`)
      this.opts.onLargeLog?.(l, logWarnBytes)
    }
    for (const id of this.warned) if (!large.has(id)) this.warned.delete(id)
  }
}

// The one prune job of the agent: every trigger (disk watcher, cron, HTTP, Alertmanager, the
// coordinator) comes here, and the job runner lets one prune run at a time. A trigger that arrives
// while an identical prune runs joins it; one that asks for something else waits for it to end.
import type { AgentContext } from '../core/feature.js'
import type { HostSnapshot } from '../core/snapshot.js'
import { withPruneLock } from './lock.js'
import { UnavailableError } from '../errors.js'
import { readFilesystem, type DiskReading } from '../inventory/disk.js'
import { runPrune } from './executor.js'
import type { PruneHooks, PruneRequest } from './executor-deps.js'
import type { PruneReport } from './report.js'
import { rulesFor } from './schedules.js'

export interface PruneJobOptions {
  measure?: (path: string) => Promise<DiskReading>
}

/** how long stop() waits for a running prune to finish its current image */
const STOP_WAIT_MS = 3000

export class PruneJob {
  private stopping = false
  private current: Promise<PruneReport> | null = null
  constructor(
    private readonly ctx: Pick<
      AgentContext,
      'config' | 'log' | 'store' | 'bus' | 'runner' | 'now' | 'runtime' | 'pulls'
    > &
      Partial<Pick<AgentContext, 'state' | 'wanted'>>,
    private readonly opts: PruneJobOptions = {},
  ) {}

  async run(req: PruneRequest, hooks: PruneHooks = {}): Promise<{ report: PruneReport; joined: boolean }> {
    if (this.stopping) throw new UnavailableError('the agent is stopping: no new prune')
    const targetPercent = req.targetPercent ?? this.ctx.config.prune.lowPercent
    // An unknown schedule name is the caller's mistake: refused before anything is queued.
    rulesFor(this.ctx.config.prune, req.schedule)
    const key = `${req.dryRun ? 'dry-run' : 'remove'}:${targetPercent}:${req.schedule ?? ''}`
    const { result, joined } = await this.ctx.runner.run('prune', key, () => {
      // A request that waited behind another prune must not start once the agent is stopping.
      if (this.stopping) return Promise.reject(new UnavailableError('the agent is stopping: no new prune'))
      this.current = this.once({ ...req, targetPercent }, hooks)
      return this.current
    })
    return { report: result, joined }
  }

  /** lets a running prune end after its current image, then waits for it (not for other kinds of job) */
  async stop(): Promise<void> {
    this.stopping = true
    // Bounded: a prune still waiting for the lock held by a `gpuhost prune` run must not hold the
    // agent past its stop limit; it has removed nothing yet and stops at its next check.
    let timer: NodeJS.Timeout | undefined
    const limit = new Promise<void>((r) => {
      timer = setTimeout(r, STOP_WAIT_MS)
    })
    await Promise.race([this.current?.catch(() => undefined), limit])
    clearTimeout(timer)
  }

  private async once(req: PruneRequest, hooks: PruneHooks): Promise<PruneReport> {
    const { config, log, store, bus, runtime, pulls, now } = this.ctx
    const measure = this.opts.measure ?? readFilesystem
    const snapshot = store.get()
    const rules = rulesFor(config.prune, req.schedule)
    const report = await runPrune(
      {
        runtime,
        measure,
        bus,
        log,
        now,
        policy: rules.policy,
        pullsInFlight: () => pulls.list(),
        wanted: () => this.ctx.wanted?.refs() ?? config.prewarm.images,
        stopRequested: () => this.stopping,
        sharedSizes: true,
        // Docker needs a little room to remove an image (it rewrites its tag store): on a full disk
        // the state reserve is given up for it, and made again once the prune has freed space.
        exclusive: (fn) =>
          withPruneLock({ stateDir: config.stateDir, log }, () => {
            this.ctx.state?.makeRoom()
            return fn()
          }),
      },
      { images: snapshot.images, diskPath: diskPathOf(snapshot, config.disk.path) },
      { ...req, schedule: rules.schedule, deep: rules.deep },
      hooks,
    )
    if (!req.dryRun && report.after) this.recordDisk(snapshot, report.after)
    return report
  }

  /** the reading taken after the prune is the freshest fact about the disk: the watcher must see it */
  private recordDisk(snapshot: HostSnapshot, after: DiskReading): void {
    const disk = this.ctx.store.get().disk ?? snapshot.disk
    if (!disk) return
    this.ctx.store.set('disk', {
      ...disk,
      sizeBytes: after.sizeBytes,
      usedBytes: after.usedBytes,
      availBytes: after.availBytes,
      usedPercent: after.usedPercent,
    })
  }
}

/** disk.path when set, else the path the disk collector measured, else Docker's root dir */
export function diskPathOf(snapshot: HostSnapshot, configured: string | null): string | null {
  return configured ?? snapshot.disk?.path ?? snapshot.docker.rootDir ?? null
}

// The time-driven prune triggers: the disk watcher and the cron schedule. Both only decide when;
// the prune job decides what. Timers start in start() and end in stop().
import { isCronExpression, startSchedule, type Schedule } from '../schedule.js'
import type { Logger } from 'pino'
import type { Component } from '../core/lifecycle.js'
import type { EventBus } from '../core/events.js'
import type { DiskFacts } from '../core/snapshot.js'
import type { PruneRequest } from './executor-deps.js'
import type { PruneReport } from './report.js'

export type StartPrune = (req: PruneRequest) => Promise<{ report: Pick<PruneReport, 'result' | 'after'> }>

/** after a prune that could not free enough, the watcher tries again this many checks later… */
export const RETRY_AFTER_CHECKS = 10
/** …twice as many after each further one in a row, up to this many… */
export const RETRY_MAX_CHECKS = 160
/** …or as soon as usage has grown by this many points */
const RETRY_ON_GROWTH_PERCENT = 1

/**
 * Every checkIntervalSeconds reads the snapshot's disk; at or above highPercent it starts a prune
 * (down to lowPercent). highPercent 100 switches it off. Crossing the line either way publishes
 * disk.threshold once, not on every check. When a prune could not free enough (everything left is
 * needed), pruning again every check would only repeat the same loud failure: the watcher waits
 * until usage grows or RETRY_AFTER_CHECKS checks have passed, and twice as long after each further
 * prune in a row that could not, up to RETRY_MAX_CHECKS: it never gives up, containers may stop.
 */
export class DiskWatcher implements Component {
  readonly name = 'disk-watcher'
  private timer: NodeJS.Timeout | null = null
  private above: boolean | null = null
  private notEnough: { usedPercent: number; checks: number; wait: number } | null = null
  /** prunes in a row that could not free enough */
  private shortRuns = 0

  constructor(
    private readonly opts: {
      disk: () => DiskFacts | null
      highPercent: number
      intervalSeconds: number
      prune: StartPrune
      bus: EventBus
      log: Logger
    },
  ) {}

  get enabled(): boolean {
    return this.opts.highPercent < 100
  }

  async start(): Promise<void> {
    if (!this.enabled) {
      this.opts.log.info('disk watcher off: prune.highPercent is 100')
      return
    }
    this.timer = setInterval(() => this.check(), this.opts.intervalSeconds * 1000)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** one look at the disk; returns whether it started (or joined) a prune */
  check(): boolean {
    const disk = this.opts.disk()
    if (!disk || !this.enabled) return false
    const above = disk.usedPercent >= this.opts.highPercent
    if (above !== this.above && (above || this.above !== null)) {
      this.opts.bus.publish('disk.threshold', {
        state: above ? 'above' : 'below',
        usedPercent: disk.usedPercent,
        highPercent: this.opts.highPercent,
        mountpoint: disk.mountpoint,
      })
      this.opts.log[above ? 'warn' : 'info'](
        { usedPercent: disk.usedPercent, highPercent: this.opts.highPercent },
        above ? 'disk usage at or above the high watermark' : 'disk usage back below the high watermark',
      )
    }
    this.above = above
    if (!above) {
      this.notEnough = null
      this.shortRuns = 0
      return false
    }
    const waiting = this.notEnough
    const grown = waiting && disk.usedPercent >= waiting.usedPercent + RETRY_ON_GROWTH_PERCENT
    if (waiting && !grown && ++waiting.checks < waiting.wait) return false
    this.notEnough = null
    this.opts.prune({ trigger: 'watcher', dryRun: false }).then(
      ({ report }) => {
        if (report.result !== 'not_enough') {
          this.shortRuns = 0
          return
        }
        const wait = Math.min(RETRY_MAX_CHECKS, RETRY_AFTER_CHECKS * 2 ** this.shortRuns++)
        this.notEnough = { usedPercent: report.after?.usedPercent ?? disk.usedPercent, checks: 0, wait }
        const { usedPercent } = this.notEnough
        this.opts.log.info({ retryAfterChecks: wait, usedPercent }, 'the watcher prunes again later')
      },
      (err) => this.opts.log.error({ err: (err as Error).message }, 'watcher prune failed'),
    )
    return true
  }
}

/**
 * prune.schedule, or one of prune.schedules (then `name` is set, and its runs follow that schedule's
 * rules): a cron expression (5 fields, or 6 with seconds first) read in `timezone` (schedule.timezone;
 * null: the host's own); null: no scheduled prune.
 */
export class CronPrune implements Component {
  readonly name: string
  private task: Schedule | null = null

  constructor(
    private readonly opts: {
      schedule: string | null
      name?: string
      timezone?: string | null
      prune: StartPrune
      log: Logger
    },
  ) {
    this.name = opts.name ? `prune-schedule:${opts.name}` : 'prune-schedule'
  }

  async start(): Promise<void> {
    const { schedule } = this.opts
    if (schedule === null) return
    if (!isCronExpression(schedule))
      throw new Error(`prune.schedule: not a cron expression: ${JSON.stringify(schedule)}`)
    this.task = startSchedule(schedule, () => this.fire(), { timezone: this.opts.timezone, log: this.opts.log })
    this.opts.log.info({ schedule: this.opts.name, next: this.task.next()?.toISOString() }, 'prune schedule armed')
  }

  /** what the schedule does when it fires */
  fire(): Promise<unknown> {
    const { name } = this.opts
    return this.opts
      .prune({ trigger: 'schedule', dryRun: false, ...(name ? { schedule: name } : {}) })
      .catch((err) => this.opts.log.error({ err: (err as Error).message, schedule: name }, 'scheduled prune failed'))
  }

  async stop(): Promise<void> {
    this.task?.stop()
    this.task = null
  }
}

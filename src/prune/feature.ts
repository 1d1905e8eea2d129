// The prune feature of the agent: one job, and every way to start it — the disk watcher, the
// schedule, POST /v1/prune, POST /hooks/alertmanager and the coordinator's "prune" action.
import type { Feature } from '../core/feature.js'
import { InvalidRequestError } from '../errors.js'
import { AlertDeduper, parseAlertmanagerPayload } from './alertmanager.js'
import { PruneJob } from './job.js'
import { pruneArgsOrThrow } from './request.js'
import { CronPrune, DiskWatcher } from './triggers.js'
import type { Component } from '../core/lifecycle.js'
import { withPruneLock } from './lock.js'

/** Alertmanager repeats a firing alert every group_interval (default 5 min); one prune per alert per window. */
const ALERT_REPEAT_WINDOW_MS = 10 * 60 * 1000

export function createPruneFeature(): Feature {
  return (ctx) => {
    const job = new PruneJob(ctx)
    const prune = (req: Parameters<PruneJob['run']>[0]) => job.run(req)

    ctx.actions.register('prune', async (args, trigger) => {
      const { dryRun, targetPercent, schedule } = pruneArgsOrThrow(args)
      const { report, joined } = await prune({ trigger, dryRun: dryRun ?? false, targetPercent, schedule })
      return { ...report, joined }
    })

    ctx.http.post('/v1/prune', async (req) => {
      const result = await ctx.actions.invoke('prune', pruneArgsOrThrow(req.body), 'http')
      return { status: result.result === 'error' ? 503 : 200, body: result }
    })

    const deduper = new AlertDeduper(ALERT_REPEAT_WINDOW_MS, ctx.now)
    ctx.http.post('/hooks/alertmanager', (req) => {
      const parsed = parseAlertmanagerPayload(req.body)
      if (!parsed.ok) throw new InvalidRequestError(`bad Alertmanager payload: ${parsed.reason}`)
      const alerts = deduper.decide(parsed.payload, ctx.config.hostId)
      const start = alerts.some((a) => a.decision === 'prune')
      const targetPercent = ctx.config.prune.lowPercent
      if (start) {
        ctx.log.info(
          {
            groupKey: parsed.payload.groupKey,
            alerts: alerts.filter((a) => a.decision === 'prune').map((a) => a.alertname),
          },
          'alert received: pruning',
        )
        // Alertmanager waits for the answer only briefly; the prune goes on after the 202.
        prune({ trigger: 'alertmanager', dryRun: false, targetPercent }).catch((err) =>
          ctx.log.error({ err: (err as Error).message }, 'alert-triggered prune failed'),
        )
      }
      return {
        status: 202,
        body: { started: start ? { action: 'prune', trigger: 'alertmanager', targetPercent } : null, alerts },
      }
    })

    const watcher = new DiskWatcher({
      disk: () => ctx.store.get().disk,
      highPercent: ctx.config.prune.highPercent,
      intervalSeconds: ctx.config.disk.checkIntervalSeconds,
      prune,
      bus: ctx.bus,
      log: ctx.log,
    })
    const { timezone } = ctx.config.schedule
    const schedules = [
      new CronPrune({ schedule: ctx.config.prune.schedule, timezone, prune, log: ctx.log }),
      ...ctx.config.prune.schedules.map(
        (s) => new CronPrune({ schedule: s.cron, name: s.name, timezone, prune, log: ctx.log }),
      ),
    ]
    const recovery: Component = {
      name: 'removal-recovery',
      // Names a removal took off before a crash go back at start, under the prune lock so that no
      // other process's removal is undone mid-way; a prune that holds the lock recovers them itself.
      // With nothing in the journal the lock is not taken (nor its library loaded); a journal that
      // cannot be read goes the locked way, which reports it without stopping the start.
      start: async () => {
        let pending = true
        try {
          pending = ctx.runtime.hasInterruptedRemovals()
        } catch {
          // reported below, by the recovery that reads it again
        }
        if (!pending) return
        const lock = { stateDir: ctx.config.stateDir, log: ctx.log, waitMs: 0 }
        void withPruneLock(lock, () => ctx.runtime.recoverInterruptedRemovals())
          .then((restored) => {
            if (restored.length === 0) return
            ctx.log.warn({ audit: 'prune', restored }, 'put back names an interrupted removal took off')
          })
          .catch((err) => {
            ctx.log.info({ err: (err as Error).message }, 'interrupted removals not recovered now; the next prune will')
          })
      },
      stop: async () => undefined,
    }
    const jobComponent = { name: 'prune-job', start: async () => undefined, stop: () => job.stop() }
    return { components: [recovery, watcher, ...schedules, jobComponent] }
  }
}

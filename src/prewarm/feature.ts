// What starts a prewarm in the agent: the prewarm.schedule cron, POST /v1/prewarm, and the
// 'prewarm' action the coordinator and other triggers invoke. All go through runPrewarm.
import { createTask, validate, type ScheduledTask } from 'node-cron'
import { z } from 'zod'
import type { Feature } from '../agent/agent.js'
import type { Trigger } from '../agent/actions.js'
import type { GpuFacts } from '../agent/snapshot.js'
import { HttpError } from '../http/server.js'
import { runPrewarm } from './executor.js'
import { buildPrewarmDeps, type CompatEvaluator } from './setup.js'
import { describeZodIssues } from '../validation.js'

export const prewarmRequestSchema = z.strictObject({
  images: z.array(z.string().min(1)).max(500).optional(),
  dryRun: z.boolean().optional(),
})

/** the prewarm feature; `evaluate` is the compat evaluator that decides what the driver can run */
export function prewarmFeature(evaluate: CompatEvaluator): Feature {
  return (ctx) => {
    const { config, log } = ctx
    // The GPU facts come from the snapshot; wait (briefly) for the first GPU collection so an
    // early prewarm judges images against the real driver rather than "not collected yet".
    const gpu = async (): Promise<GpuFacts> => {
      const deadline = Date.now() + (config.gpu.timeoutSeconds + 2) * 1000
      while (ctx.store.get().gpu.reason === 'not collected yet' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
      return ctx.store.get().gpu
    }
    const deps = buildPrewarmDeps({ config, log, bus: ctx.bus, runner: ctx.runner, actions: ctx.actions, gpu, evaluate })
    const run = (args: unknown, trigger: Trigger) => {
      const parsed = prewarmRequestSchema.safeParse(args ?? {})
      if (!parsed.success) throw new HttpError(400, `bad prewarm request: ${describeZodIssues(parsed.error.issues)}`)
      return runPrewarm(deps, { ...parsed.data, trigger })
    }
    ctx.actions.register('prewarm', (args, trigger) => run(args, trigger))
    ctx.http.post('/v1/prewarm', async (req) => ({ status: 200, body: await run(req.body, 'http') }))

    let task: ScheduledTask | null = null
    return [{
      name: 'prewarm-schedule',
      async start() {
        const schedule = config.prewarm.schedule
        if (schedule === null) return
        if (!validate(schedule)) throw new Error(`prewarm.schedule: not a valid cron expression: ${schedule}`)
        task = createTask(schedule, async () => {
          try {
            await run({}, 'schedule')
          } catch (err) {
            log.error({ err: (err as Error).message }, 'scheduled prewarm failed')
          }
        }, { name: 'prewarm', noOverlap: true })
        await task.start()
      },
      async stop() {
        // A pull in flight is left to dockerd: waiting for a multi-GB download would hold a stop for minutes.
        await task?.destroy()
        task = null
        await deps.close()
      },
    }]
  }
}

// What starts a prewarm in the agent: the agent's start (wanted images missing), the
// prewarm.schedule cron, POST /v1/prewarm, and the 'prewarm' action the coordinator and other
// triggers invoke. All go through runPrewarm.
import { createTask, validate, type ScheduledTask } from 'node-cron'
import type { Feature } from '../agent/agent.js'
import type { Trigger } from '../agent/actions.js'
import type { GpuFacts } from '../agent/snapshot.js'
import { GPU_COLLECTOR } from '../gpu/feature.js'
import { runPrewarm } from './executor.js'
import { prewarmArgsOrThrow } from './request.js'
import { buildPrewarmDeps, type CompatEvaluator } from './setup.js'
import { prewarmOnStartComponent } from './on-start.js'
import { StartBackoff } from './start-backoff.js'
import { WantedPins } from './pins.js'

/** the prewarm feature; `evaluate` is the compat evaluator that decides what the driver can run */
export function prewarmFeature(evaluate: CompatEvaluator): Feature {
  return (ctx) => {
    const { config, log } = ctx
    // The GPU facts come from the snapshot; wait (briefly) for the first GPU collection so an
    // early prewarm judges images against the real driver rather than facts not collected yet.
    const gpu = async (): Promise<GpuFacts> => {
      await ctx.store.collected(GPU_COLLECTOR, (config.gpu.timeoutSeconds + 2) * 1000)
      return ctx.store.get().gpu
    }
    const { bus, runner, actions, now, runtime, pulls } = ctx
    const deps = {
      ...buildPrewarmDeps({ config, log, bus, runner, runtime, pulls, actions, gpu, evaluate, now }),
      wanted: () => ctx.wanted.refs(),
    }
    const run = async (args: unknown, trigger: Trigger) => {
      const result = await runPrewarm(deps, { ...prewarmArgsOrThrow(args), trigger })
      // what this run pulled is pinned before the call answers
      await pins.sync()
      return result
    }
    const pins = new WantedPins(runtime, () => ctx.wanted.refs(), config.docker.refreshIntervalSeconds * 1000, log)
    const onStart = prewarmOnStartComponent({
      wanted: () => ctx.wanted.refs(),
      facts: deps.facts,
      backoff: new StartBackoff({
        stateDir: config.stateDir,
        now,
        onDamaged: (reason, movedTo) =>
          log.error({ movedTo, err: reason }, 'the prewarm backoff file was damaged: moved aside'),
      }),
      run: (images) => runPrewarm(deps, { images, trigger: 'start' }).finally(() => pins.sync()),
      log,
    })
    ctx.actions.register('prewarm', (args, trigger) => run(args, trigger))
    ctx.http.post('/v1/prewarm', async (req) => ({ status: 200, body: await run(req.body, 'http') }))

    let task: ScheduledTask | null = null
    return {
      components: [
        {
          name: 'prewarm-schedule',
          async start() {
            const schedule = config.prewarm.schedule
            if (schedule === null) return
            if (!validate(schedule)) throw new Error(`prewarm.schedule: not a valid cron expression: ${schedule}`)
            task = createTask(
              schedule,
              async () => {
                try {
                  await run({}, 'schedule')
                } catch (err) {
                  log.error({ err: (err as Error).message }, 'scheduled prewarm failed')
                }
              },
              { name: 'prewarm', noOverlap: true },
            )
            await task.start()
          },
          async stop() {
            // A pull in flight is left to dockerd: waiting for a multi-GB download would hold a stop for minutes.
            await task?.destroy()
            task = null
            await deps.close()
          },
        },
        onStart,
        pins,
      ],
    }
  }
}

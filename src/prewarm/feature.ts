// What starts a prewarm in the agent: the agent's start (wanted images missing), the
// prewarm.schedule cron, POST /v1/prewarm, and the 'prewarm' action the coordinator and other
// triggers invoke. All go through runPrewarm.
import { isCronExpression, startSchedule, type Schedule } from '../schedule.js'
import type { Feature } from '../core/feature.js'
import type { Trigger } from '../core/actions.js'
import type { GpuFacts } from '../core/snapshot.js'
import { GPU_COLLECTOR } from '../gpu/feature.js'
import { runPrewarm } from './executor.js'
import { holdSource, prewarmArgsOrThrow, releaseArgsOrThrow, type PrewarmArgs } from './request.js'
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
    const run = async (raw: unknown, trigger: Trigger) => {
      const { images, dryRun, peers, ...hold } = prewarmArgsOrThrow(raw)
      // Held before pulling and kept whatever the pull's outcome: the hold says what the host
      // should keep; a pull that failed now is tried again by later prewarms of the wanted set.
      if (hold.hold && images?.length && !dryRun) holdImages(images, hold)
      const result = await runPrewarm(deps, { images, dryRun, trigger, peers })
      // what this run pulled is pinned before the call answers
      await pins.sync()
      return result
    }
    const pins = new WantedPins(runtime, () => ctx.wanted.refs(), config.docker.refreshIntervalSeconds * 1000, log)
    const holdImages = (images: string[], hold: Omit<PrewarmArgs, 'images' | 'dryRun'>) => {
      for (const old of hold.replaces ?? []) {
        const released = ctx.wanted.releaseSource(holdSource(old))
        if (released.length) log.info({ rollout: old, released }, 'released the images an earlier rollout held')
      }
      const added = ctx.wanted.hold(images, holdSource(hold.rollout))
      if (added.length) log.info({ rollout: hold.rollout, added }, 'holding images in the wanted set')
    }
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
    ctx.actions.register('release', async (raw) => {
      const { ref, rollout } = releaseArgsOrThrow(raw)
      const source = rollout === undefined ? undefined : holdSource(rollout)
      const released =
        ref === undefined ? ctx.wanted.releaseSource(source!) : ctx.wanted.release(ref, source) ? [ref] : []
      // a released image is unpinned now (containerd), not at the next refresh
      if (released.length > 0) await pins.sync()
      return { released }
    })
    ctx.http.post('/v1/prewarm', async (req) => ({ status: 200, body: await run(req.body, 'http') }))

    let task: Schedule | null = null
    return {
      components: [
        {
          name: 'prewarm-schedule',
          async start() {
            const schedule = config.prewarm.schedule
            if (schedule === null) return
            if (!isCronExpression(schedule))
              throw new Error(`prewarm.schedule: not a valid cron expression: ${schedule}`)
            task = startSchedule(
              schedule,
              async () => {
                try {
                  await run({}, 'schedule')
                } catch (err) {
                  log.error({ err: (err as Error).message }, 'scheduled prewarm failed')
                }
              },
              { timezone: config.schedule.timezone, log },
            )
            log.info({ next: task.next()?.toISOString() }, 'prewarm schedule armed')
          },
          async stop() {
            // A pull in flight is left to dockerd: waiting for a multi-GB download would hold a stop for minutes.
            task?.stop()
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

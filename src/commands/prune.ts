// gpuhost prune: one prune now, with the configured policy, ordered by the same durable last-used
// and first-seen record the agent keeps in stateDir. Exit 1 when it could not free enough, 69 when
// Docker is unreachable.
import { systemClock } from '../core/clock.js'
import type { GlobalOptions } from './options.js'
import { loadAgentConfig } from '../config.js'
import { EventBus } from '../core/events.js'
import { CliError, EXIT } from '../exit-codes.js'
import { createRuntime, runtimeSocket } from '../runtime/create.js'
import { runtimeUnreachableHint } from '../runtime/unreachable-hint.js'
import { takeSnapshotOnce } from '../inventory/feature.js'
import { createLogger } from '../log.js'
import { readFilesystem } from '../inventory/disk.js'
import { runPrune } from '../prune/executor.js'
import type { PruneReport } from '../prune/report.js'
import { diskPathOf } from '../prune/job.js'
import { withPruneLock } from '../prune/lock.js'
import { WantedSet } from '../prewarm/wanted.js'
import { formatPruneReport } from './prune-format.js'
import { rulesFor } from '../prune/schedules.js'
import { releaseReserveWhenFull } from '../state/guard.js'

export async function run(
  opts: { dryRun?: boolean; targetPercent?: number; schedule?: string },
  globals: GlobalOptions,
): Promise<number> {
  const config = loadAgentConfig(globals.config)
  const target = opts.targetPercent
  if (target !== undefined && !(Number.isFinite(target) && target >= 0 && target <= 100)) {
    throw new CliError('--target-percent must be a number from 0 to 100', EXIT.usage)
  }
  let rules
  try {
    rules = rulesFor(config.prune, opts.schedule)
  } catch (err) {
    throw new CliError(`--schedule: ${(err as Error).message}`, EXIT.usage)
  }
  // Audit lines and warnings go to stderr; stdout carries only the report.
  const log = createLogger({ level: config.log.level, toStderr: true })
  const runtime = createRuntime(config)
  const snapshot = await takeSnapshotOnce(config, log, { runtime })
  if (!snapshot.docker.reachable || snapshot.images === null) {
    const why = snapshot.docker.reason ?? snapshot.collectors.images?.error ?? 'no answer'
    const name = runtime.kind === 'containerd' ? 'containerd' : 'Docker'
    const hint = runtimeUnreachableHint(config, why)
    throw new CliError(
      `${name} is unreachable at ${runtimeSocket(config)}: ${why}${hint ? `\n  ${hint}` : ''}`,
      EXIT.unavailable,
    )
  }
  // The same wanted set the agent keeps: prewarm.images and the images held for rollouts.
  const wanted = new WantedSet({
    stateDir: config.stateDir,
    configured: config.prewarm.images,
    now: systemClock,
    onDamaged: (reason, movedTo) => log.error({ movedTo, err: reason }, 'the wanted-images file was damaged'),
  })
  const report = await runPrune(
    {
      runtime,
      measure: readFilesystem,
      bus: new EventBus(),
      log,
      now: systemClock,
      policy: rules.policy,
      // A one-shot command cannot see the agent's pulls; the daemon's own refusal (409) still guards them.
      pullsInFlight: () => [],
      wanted: () => wanted.refs(),
      sharedSizes: true,
      exclusive: (fn) =>
        withPruneLock({ stateDir: config.stateDir, log }, () => {
          if (releaseReserveWhenFull(config.stateDir, config.state.reserveBytes))
            log.warn({ stateDir: config.stateDir }, 'the disk is full: the state reserve is given up for the prune')
          return fn()
        }),
    },
    { images: snapshot.images, diskPath: diskPathOf(snapshot, config.disk.path) },
    { trigger: 'cli', dryRun: opts.dryRun ?? false, targetPercent: target, schedule: rules.schedule, deep: rules.deep },
  )
  process.stdout.write(globals.json ? JSON.stringify(report, null, 2) + '\n' : formatPruneReport(report))
  return exitCodeOf(
    report,
    await runtime.ping().then(
      () => true,
      () => false,
    ),
  )
}

function exitCodeOf(report: PruneReport, dockerReachable: boolean): number {
  if (report.result === 'error') return dockerReachable ? EXIT.no : EXIT.unavailable
  return report.result === 'not_enough' ? EXIT.no : EXIT.ok
}

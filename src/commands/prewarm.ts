// gpuhost prewarm: one prewarm now, from this host, with the configured policy. A person on a
// terminal sees a live bar per image; scripts get --json; exit 1 if any image failed, 69 when
// Docker cannot be reached.
import type { MultiBar, SingleBar } from 'cli-progress'
import type { GlobalOptions } from './options.js'
import { loadAgentConfig } from '../config.js'
import { EventBus } from '../core/events.js'
import { CliError, EXIT } from '../exit-codes.js'
import { runPrewarm } from '../prewarm/executor.js'
import type { PrewarmReport, PullResult } from '../prewarm/result.js'
import { evaluateCompat, readHostGpu } from '../prewarm/compat.js'
import { DockerUnreachableError } from '../prewarm/facts.js'
import { buildPrewarmDeps } from '../prewarm/setup.js'
import { WantedSet } from '../prewarm/wanted.js'
import { systemClock } from '../core/clock.js'
import { JobRunner } from '../core/job-runner.js'
import { PullsInFlight } from '../core/pulls-in-flight.js'
import { createRuntime } from '../runtime/create.js'
import { createLogger } from '../log.js'
import { runtimeUnreachableHint } from '../runtime/unreachable-hint.js'

const MiB = 1024 * 1024

export async function run(opts: { image?: string[]; dryRun?: boolean }, globals: GlobalOptions): Promise<number> {
  const config = loadAgentConfig(globals.config)
  const log = createLogger({
    level: globals.json ? 'warn' : config.log.level === 'info' ? 'warn' : config.log.level,
    toStderr: true,
  })
  const interactive = !globals.json && process.stdout.isTTY === true
  // the bars' library is loaded only for a terminal: scripts and --json do not pay for it
  const view = interactive ? await BarView.create() : null
  const deps = buildPrewarmDeps({
    config,
    log,
    bus: new EventBus(),
    runner: new JobRunner(),
    runtime: createRuntime(config),
    pulls: new PullsInFlight(),
    gpu: () => readHostGpu(config),
    evaluate: evaluateCompat,
  })
  let report: PrewarmReport
  try {
    report = await runPrewarm(
      {
        ...deps,
        // without --image: the wanted set the agent keeps, prewarm.images and the images held for rollouts
        wanted: () =>
          new WantedSet({
            stateDir: config.stateDir,
            configured: config.prewarm.images,
            now: systemClock,
            onDamaged: (reason, movedTo) => log.error({ movedTo, err: reason }, 'the wanted-images file was damaged'),
          }).refs(),
        onProgress: view ? (ref, p) => view.progress(ref, p.bytesDone, p.bytesTotal, p.source) : undefined,
        onResult: view ? (r) => view.finish(r) : undefined,
      },
      { images: opts.image, dryRun: !!opts.dryRun, trigger: 'cli' },
    )
  } catch (err) {
    if (err instanceof DockerUnreachableError) {
      const hint = runtimeUnreachableHint(config, err.message)
      throw new CliError(`${err.message}${hint ? `\n  ${hint}` : ''}`, EXIT.unavailable)
    }
    throw err
  } finally {
    view?.stop()
    await deps.close()
  }
  if (globals.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  else process.stdout.write(formatReport(report, interactive))
  return report.results.some((r) => r.status === 'failed') ? EXIT.no : EXIT.ok
}

const MARK: Record<PullResult['status'], string> = {
  pulled: 'pulled ',
  present: 'present',
  skipped: 'skipped',
  failed: 'FAILED ',
}

function formatReport(report: PrewarmReport, afterBars: boolean): string {
  if (report.results.length === 0)
    return 'nothing to prewarm: the wanted set (prewarm.images and held images) is empty and no --image was given\n'
  const lines = report.results.map((r) => {
    const where = r.source && (r.status === 'pulled' || r.status === 'present') ? ` from ${r.source}` : ''
    const time = r.status === 'pulled' ? ` in ${r.durationSeconds.toFixed(1)} s` : ''
    const warn = (r.warnings ?? []).map((w) => `\n          warning: ${w}`).join('')
    return `${MARK[r.status]}  ${r.ref}${where}${time}: ${r.reason}${warn}`
  })
  const count = (s: PullResult['status']) => report.results.filter((r) => r.status === s).length
  const counts = (['pulled', 'present', 'skipped', 'failed'] as const).map((s) => `${count(s)} ${s}`).join(', ')
  const summary = `${report.dryRun ? 'dry run: ' : ''}${counts} in ${report.durationSeconds.toFixed(1)} s`
  return `${afterBars ? '\n' : ''}${lines.join('\n')}\n${summary}\n`
}

/** One bar per image while it pulls, on stderr so stdout keeps only the report. */
class BarView {
  static async create(): Promise<BarView> {
    const { MultiBar, Presets } = await import('cli-progress')
    return new BarView(
      new MultiBar(
        {
          format: ' {ref} |{bar}| {percentage}% {done}/{totalMiB} MiB {state}',
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          stream: process.stderr,
        },
        Presets.shades_classic,
      ),
    )
  }

  private constructor(private readonly bars: MultiBar) {}

  private readonly byRef = new Map<string, SingleBar>()
  private readonly width = 40

  progress(ref: string, done: number, total: number, source: string): void {
    let bar = this.byRef.get(ref)
    const payload = {
      ref: this.label(ref),
      done: (done / MiB).toFixed(1),
      totalMiB: (total / MiB).toFixed(1),
      state: `from ${source}`,
    }
    if (!bar) {
      bar = this.bars.create(Math.max(total, 1), done, payload)
      this.byRef.set(ref, bar)
    }
    bar.update(done, payload)
  }

  finish(r: PullResult): void {
    const bar = this.byRef.get(r.ref)
    if (!bar) return
    bar.update(r.status === 'pulled' ? bar.getTotal() : bar.getProgress() * bar.getTotal(), { state: r.status })
  }

  stop(): void {
    this.bars.stop()
  }

  private label(ref: string): string {
    return ref.length > this.width ? `…${ref.slice(-(this.width - 1))}` : ref.padEnd(this.width)
  }
}

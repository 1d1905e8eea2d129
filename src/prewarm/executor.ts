// The prewarm run: asks the registries about each wanted image, plans (pure), makes room through
// the prune job when the plan needs it, then carries out the plan's items, pulls with bounded
// concurrency, publishing one result per image and the run's outcome.
import pLimit from 'p-limit'
import type { Trigger } from '../core/actions.js'
import { inspectConcurrency } from '../config.js'
import type { RemoteImage } from '../registry/types.js'
import { millis, type PrewarmDeps } from './deps.js'
import { makeRoom } from './make-room.js'
import type { PeerSource } from './peer-fetch.js'
import { planPrewarm, type RemoteFailure } from './plan.js'
import { resultStatus, type PrewarmReport, type PullResult, type PullStatus } from './result.js'
import { settleItem } from './settle-item.js'

export interface PrewarmRequest {
  images?: string[]
  dryRun?: boolean
  trigger: Trigger
  /** hosts of the fleet to fetch an image from before its mirrors and registry, by reference as given */
  peers?: Record<string, PeerSource[]>
}

/** One prewarm through the job runner: a trigger that arrives while the same one runs joins it. */
export async function runPrewarm(deps: PrewarmDeps, req: PrewarmRequest): Promise<PrewarmReport> {
  const images = req.images?.length ? req.images : (deps.wanted?.() ?? deps.config.prewarm.images)
  const key = JSON.stringify({ images, dryRun: !!req.dryRun })
  const { result } = await deps.runner.run('prewarm', key, () => prewarmOnce(deps, { ...req, images }))
  return result
}

async function prewarmOnce(deps: PrewarmDeps, req: PrewarmRequest & { images: string[] }): Promise<PrewarmReport> {
  const now = millis(deps.now)
  const started = now()
  const dryRun = !!req.dryRun
  deps.bus.publish('prewarm.started', { trigger: req.trigger, dryRun, images: req.images })
  let report: PrewarmReport
  try {
    report = await planAndPull(deps, req, dryRun, started)
  } catch (err) {
    deps.bus.publish('prewarm.finished', {
      trigger: req.trigger,
      dryRun,
      result: 'error',
      error: (err as Error).message,
      durationSeconds: (now() - started) / 1000,
    })
    throw err
  }
  const count = (s: PullStatus) => report.results.filter((r) => r.status === s).length
  deps.bus.publish('prewarm.finished', {
    trigger: req.trigger,
    dryRun,
    result: count('failed') ? 'failed' : 'ok',
    pulled: count('pulled'),
    present: count('present'),
    skipped: count('skipped'),
    failed: count('failed'),
    durationSeconds: report.durationSeconds,
    results: report.results,
  })
  return report
}

async function planAndPull(
  deps: PrewarmDeps,
  req: PrewarmRequest & { images: string[] },
  dryRun: boolean,
  started: number,
): Promise<PrewarmReport> {
  const now = millis(deps.now)
  const { prewarm, prune } = deps.config
  // Three independent reads, each a wait on something else (the runtime, the registries,
  // nvidia-smi, which takes up to a second on a large host): side by side, not one after another.
  // The host's facts are awaited first, so Docker unreachable is reported at once, as before:
  // nothing can be pulled without it (the registry reads already started then finish unawaited).
  const remoteRead = inspectAll(deps, req.images)
  const compatRead = settled(deps.compat())
  const facts = await deps.facts()
  const remote = await remoteRead
  const compat = valueOf(await compatRead)
  const base = {
    wanted: req.images,
    remote,
    highPercent: prune.highPercent,
    expansionFactor: prewarm.expansionFactor,
    compat,
    mirrors: prewarm.mirrors,
  }
  let plan = planPrewarm({ ...base, local: facts.local, disk: facts.disk })
  if (plan.needBytes > 0) {
    const room = await makeRoom(deps, plan, facts, req.trigger, dryRun)
    const after = room.freedBytes > 0 ? await deps.facts() : facts
    plan = planPrewarm({ ...base, local: after.local, disk: after.disk, prune: room })
  }
  for (const item of plan.items) for (const w of item.warnings) deps.log.warn({ ref: item.ref }, w)
  const planView = plan.items.map((i) => ({
    ref: i.ref,
    action: i.action,
    reason: i.reason,
    estimatedBytes: i.estimatedBytes,
    warnings: i.warnings,
  }))
  if (dryRun) {
    const results = plan.items.map((i): PullResult => ({
      ref: i.ref,
      status: i.action === 'pull' ? 'skipped' : resultStatus(i.action),
      reason: i.action === 'pull' ? `dry run: would pull (${i.reason})` : i.reason,
      source: i.remote?.registry ?? null,
      durationSeconds: 0,
      ...(i.warnings.length ? { warnings: i.warnings } : {}),
    }))
    return { trigger: req.trigger, dryRun, results, plan: planView, durationSeconds: (now() - started) / 1000 }
  }
  // Only pulls wait for a slot; a verdict that needs no download is reported at once.
  const limit = pLimit(prewarm.concurrency)
  const results = await Promise.all(
    plan.items.map((item) => {
      const peers = [...(req.peers?.[item.ref] ?? [])]
      return item.action === 'pull' ? limit(() => settleItem(deps, item, peers)) : settleItem(deps, item, peers)
    }),
  )
  return { trigger: req.trigger, dryRun, results, plan: planView, durationSeconds: (now() - started) / 1000 }
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown }

/** a promise that never rejects, so that a read started beside others is never left unhandled */
function settled<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  )
}

function valueOf<T>(s: Settled<T>): T {
  if (!s.ok) throw s.error
  return s.value
}

async function inspectAll(deps: PrewarmDeps, images: string[]): Promise<Map<string, RemoteImage | RemoteFailure>> {
  const limit = pLimit(inspectConcurrency(deps.config.prewarm))
  const out = new Map<string, RemoteImage | RemoteFailure>()
  await Promise.all(
    images.map((ref) =>
      limit(async () => {
        try {
          out.set(ref, await deps.source.inspectRemote(ref))
        } catch (err) {
          out.set(ref, { error: (err as Error).message, kind: (err as { kind?: string }).kind })
        }
      }),
    ),
  )
  return out
}

// The prewarm executor: asks the registries about each wanted image, plans (pure), makes room
// through the prune job when the plan needs it, then pulls with bounded concurrency, retries
// with exponential backoff and jitter, a stall timeout per attempt and mirror fallback, publishing
// progress and one result per image.
import { setTimeout as sleep } from 'node:timers/promises'
import pLimit from 'p-limit'
import { backOff } from 'exponential-backoff'
import type { Logger } from 'pino'
import type { ActionRegistry, Trigger } from '../core/actions.js'
import { inspectConcurrency, type AgentConfig } from '../config.js'
import { usableBytes } from '../inventory/used-percent.js'
import type { EventBus } from '../core/events.js'
import { systemClock, type Clock } from '../core/clock.js'
import { PullError, type ContainerRuntime, type PullProgress } from '../runtime/runtime.js'
import type { PullsInFlight } from '../core/pulls-in-flight.js'
import type { ImageCompat } from '../core/snapshot.js'
import type { CredentialStore } from '../registry/credentials.js'
import { familiarName, formatRef, onRegistry, parseImageRef, type ImageRef } from '../registry/reference.js'
import type { RemoteImage, RemoteImageSource } from '../registry/types.js'
import type { PrewarmHostFacts } from './facts.js'
import { highWatermarkBytes, mib, planPrewarm, type PlanItem, type PrewarmPlan, type RemoteFailure } from './plan.js'
import type { JobRunner } from '../core/job-runner.js'
import { fetchFromPeer, LocalLoadError, PeerBreachError, PeerBusyError, type PeerSource } from './peer-fetch.js'

export type PullStatus = 'pulled' | 'present' | 'skipped' | 'failed'

export interface PullResult {
  ref: string
  status: PullStatus
  reason: string
  /** the registry or mirror the image came from (or would come from); null when none was reached */
  source: string | null
  durationSeconds: number
  warnings?: string[]
  /** why a skipped image was skipped */
  skip?: 'incompatible' | 'disk'
  /** the pulled image's compressed size (layers the host already had included); 0 when nothing was pulled */
  bytesPulled?: number
  /** where the bytes came from: the image's own registry, a mirror of it, or another host of the fleet */
  sourceKind?: SourceKind
  /** the named peers that failed the image (refused, cut, sent other bytes): the coordinator stops naming them */
  peerFailures?: PeerFailure[]
}

export interface PeerFailure {
  host: string
  reason: string
  /** its archive named images on this host (names put back): the coordinator names it no more */
  breach?: true
}

export type SourceKind = 'registry' | 'mirror' | 'peer'

export interface PrewarmReport {
  trigger: Trigger
  dryRun: boolean
  results: PullResult[]
  /** what was planned, item by item: the dry-run answer, also given for a real run */
  plan: { ref: string; action: PlanItem['action']; reason: string; estimatedBytes?: number; warnings: string[] }[]
  durationSeconds: number
}

export interface PrewarmDeps {
  runtime: ContainerRuntime
  /** references being pulled: added for as long as each pull lasts, so a prune leaves them alone */
  pulls: PullsInFlight
  source: RemoteImageSource & { sourcesFor(domain: string): string[] }
  credentials: CredentialStore
  config: Pick<AgentConfig, 'prewarm' | 'prune'>
  bus: EventBus
  runner: JobRunner
  actions?: ActionRegistry
  /** local images, disk and registry trust, read fresh */
  facts: () => Promise<PrewarmHostFacts>
  /** the driver's verdict on an image's CUDA env */
  compat: () => Promise<(cudaEnv: Record<string, string>) => ImageCompat>
  log: Logger
  /** the agent's clock; the system clock when absent */
  now?: Clock
  /** finer progress than the events, for a terminal */
  onProgress?: (ref: string, p: PullProgress & { source: string }) => void
  onResult?: (r: PullResult) => void
  /** backoff before the first retry; doubles each time, with jitter */
  retryMinMs?: number
  /** the wanted set (prewarm.images and images held for rollouts): what a prewarm naming no images pulls */
  wanted?: () => string[]
  /** peers.tls.caFile: the fleet CA https:// peers are checked against */
  peerCaFile?: string | null
  /** peers.allowLoopback: peers on 127.0.0.1 / ::1 are fetched from (a fleet on one machine) */
  peerAllowLoopback?: boolean
}

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
      return item.action === 'pull' ? limit(() => settle(deps, item, peers)) : settle(deps, item, peers)
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

/** the clock as milliseconds, for durations */
function millis(clock: Clock = systemClock): () => number {
  return () => clock().getTime()
}

function resultStatus(action: PlanItem['action']): PullStatus {
  return action === 'present' ? 'present' : action === 'fail' ? 'failed' : action === 'skip' ? 'skipped' : 'pulled'
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

/**
 * Asks the prune job (when this agent has one) to free what the skipped pulls need: a dry run
 * first, and a real prune only when it can free enough, so nothing is removed in vain.
 */
export async function makeRoom(
  deps: Pick<PrewarmDeps, 'actions' | 'log' | 'config'>,
  plan: PrewarmPlan,
  facts: Pick<PrewarmHostFacts, 'disk'>,
  trigger: Trigger,
  dryRun: boolean,
): Promise<{ attempted: boolean; freedBytes: number; note: string }> {
  const disk = facts.disk
  if (!disk) return { attempted: false, freedBytes: 0, note: 'disk usage unknown' }
  if (!deps.actions?.has('prune'))
    return { attempted: false, freedBytes: 0, note: 'no prune job on this host to make room' }
  // Room for every pull, not only the first that did not fit: what they all add, over the watermark.
  const wantedBytes = plan.items
    .filter((i) => i.action === 'pull' || i.needBytes)
    .reduce((s, i) => s + (i.estimatedBytes ?? 0), 0)
  const usable = usableBytes(disk)
  const need = disk.usedBytes + wantedBytes - highWatermarkBytes(disk, deps.config.prune.highPercent)
  const targetPercent = Math.max(0, ((disk.usedBytes - need) / usable) * 100)
  try {
    const preview = await deps.actions.invoke('prune', { dryRun: true, targetPercent }, trigger)
    // What removal frees for sure (size less layers other images keep), not the images' sizes:
    // counting shared layers would start a prune that empties the host and still leaves no room.
    const freeable = preview.plan.reduce((s, p) => s + p.expectedFreedBytes, 0)
    if (!preview.enough && freeable < need) {
      return {
        attempted: true,
        freedBytes: 0,
        note: `a prune could free only ${mib(freeable)} of the ${mib(need)} needed, so none was run`,
      }
    }
    if (dryRun)
      return { attempted: true, freedBytes: 0, note: `a prune would free ${mib(freeable)} first to make room` }
    const { freedBytes } = await deps.actions.invoke('prune', { dryRun: false, targetPercent }, trigger)
    deps.log.info({ freedBytes, targetPercent }, 'asked the prune job to make room for pulls')
    return { attempted: true, freedBytes, note: `the prune job freed ${mib(freedBytes)} to make room, not enough` }
  } catch (err) {
    return { attempted: true, freedBytes: 0, note: `the prune job could not make room: ${(err as Error).message}` }
  }
}

/** Carries out one plan item and publishes its result. */
async function settle(deps: PrewarmDeps, item: PlanItem, peers: PeerSource[]): Promise<PullResult> {
  const now = millis(deps.now)
  const started = now()
  const peerFailures: PeerFailure[] = []
  let result: PullResult
  if (item.action !== 'pull') {
    result = {
      ref: item.ref,
      status: resultStatus(item.action),
      reason: item.reason,
      source: item.remote?.registry ?? null,
      durationSeconds: 0,
    }
  } else {
    try {
      const got = await pullWithRetries(deps, item, peers, peerFailures)
      result = {
        ref: item.ref,
        status: 'pulled',
        reason: item.reason,
        source: got.source,
        sourceKind: got.kind,
        durationSeconds: (now() - started) / 1000,
        bytesPulled: got.bytes ?? item.remote?.compressedBytes ?? 0,
      }
    } catch (err) {
      result = {
        ref: item.ref,
        status: 'failed',
        reason: (err as Error).message,
        source: null,
        durationSeconds: (now() - started) / 1000,
      }
    }
  }
  if (item.warnings.length) result.warnings = item.warnings
  if (item.action === 'skip' && item.skip) result.skip = item.skip
  if (peerFailures.length) result.peerFailures = peerFailures
  result.bytesPulled ??= 0
  deps.bus.publish(result.status === 'failed' ? 'pull.failed' : 'pull.finished', { ...result })
  deps.onResult?.(result)
  return result
}

/** "not found" from every source: a retry would not change it */
class NotFoundEverywhere extends Error {}

interface Fetched {
  source: string
  kind: SourceKind
  /** bytes read, where they were counted (a peer's archive); else the manifest's compressed size */
  bytes?: number
}

async function pullWithRetries(
  deps: PrewarmDeps,
  item: PlanItem,
  peers: PeerSource[],
  peerFailures: PeerFailure[],
): Promise<Fetched> {
  const { retries } = deps.config.prewarm
  return backOff(() => pullFromSources(deps, item, peers, peerFailures), {
    numOfAttempts: retries + 1,
    startingDelay: deps.retryMinMs ?? 1000,
    timeMultiple: 2,
    maxDelay: 60_000,
    jitter: 'full',
    retry: (error: Error, attemptNumber: number) => {
      if (error instanceof NotFoundEverywhere) return false
      deps.log.warn(
        { ref: item.ref, attempt: attemptNumber, retriesLeft: retries + 1 - attemptNumber, err: error.message },
        'pull attempt failed',
      )
      return true
    },
  })
}

/** times one peer answering 503 (at its peers.maxUploads) is asked again before the next source */
const PEER_BUSY_RETRIES = 3

/**
 * One attempt: the peers the coordinator named, then each mirror in order, then the registry
 * itself. A peer that failed (refused, died mid-stream, sent other bytes) is not asked again.
 */
async function pullFromSources(
  deps: PrewarmDeps,
  item: PlanItem,
  peers: PeerSource[],
  peerFailures: PeerFailure[],
): Promise<Fetched> {
  const ref = parseImageRef(item.ref)
  const sources = deps.source.sourcesFor(ref.domain)
  const failures: string[] = []
  let allNotFound = true
  const busyAnswers = new Map<PeerSource, number>()
  while (peers.length > 0 && item.remote?.configDigest) {
    const peer = peers[0]
    try {
      const bytes = await loadFromPeer(deps, item, ref, peer, item.remote.configDigest)
      return { source: `peer:${peer.host}`, kind: 'peer', bytes }
    } catch (err) {
      peers.shift()
      const busy = busyAnswers.get(peer) ?? 0
      if (err instanceof PeerBusyError && busy < PEER_BUSY_RETRIES) {
        // A busy peer is not a failed one: its other uploads end soon, and waiting for it costs less
        // than the registry. It goes to the back of the line; when the next in line was busy too, wait.
        busyAnswers.set(peer, busy + 1)
        peers.push(peer)
        deps.log.info({ ref: item.ref, peer: peer.host, retryAfter: err.retryAfterSeconds }, 'peer busy: asked again')
        if (busyAnswers.has(peers[0])) await sleep(err.retryAfterSeconds * 1000)
        continue
      }
      allNotFound = false
      // a busy peer asked its last time is not reported: it did nothing wrong, and its slots are counted
      // nor is a load that failed on this host (its engine, its disk)
      const breach = err instanceof PeerBreachError
      if (!(err instanceof PeerBusyError || err instanceof LocalLoadError))
        peerFailures.push({ host: peer.host, reason: (err as Error).message, ...(breach ? { breach } : {}) })
      failures.push(`peer ${peer.host}: ${(err as Error).message}`)
      if (breach) deps.log.error({ ref: item.ref, peer: peer.host, err: (err as Error).message }, 'peer archive breach')
      else
        deps.log.warn({ ref: item.ref, peer: peer.host, err: (err as Error).message }, 'peer fetch failed: next source')
    }
  }
  for (const source of sources) {
    try {
      await pullFrom(deps, item, ref, source)
      return { source, kind: source === ref.domain ? 'registry' : 'mirror' }
    } catch (err) {
      failures.push(`${source}: ${(err as Error).message}`)
      if (!(err instanceof PullError && err.notFound)) allNotFound = false
    }
  }
  const message = `pull failed from ${failures.join('; ')}`
  throw allNotFound ? new NotFoundEverywhere(message) : new Error(message)
}

/** one peer's archive into the runtime, under the same stall and attempt limits as a pull */
async function loadFromPeer(
  deps: PrewarmDeps,
  item: PlanItem,
  ref: ImageRef,
  peer: PeerSource,
  configDigest: string,
): Promise<number> {
  const now = millis(deps.now)
  const attempt = attemptSignal(deps.config.prewarm)
  const total = item.remote?.compressedBytes ?? 0
  let done = 0
  let lastEvent = 0
  const names = [item.ref, formatRef(ref)]
  for (const name of names) deps.pulls.add(name)
  try {
    return await fetchFromPeer(peer, {
      runtime: deps.runtime,
      ref,
      configDigest,
      caFile: deps.peerCaFile,
      allowLoopback: deps.peerAllowLoopback,
      signal: attempt.signal,
      onReceived: () => attempt.transferred(),
      onBytes: (n) => {
        attempt.progressed()
        done += n
        const p = { bytesDone: done, bytesTotal: Math.max(total, done) }
        deps.onProgress?.(item.ref, { ...p, source: `peer:${peer.host}` })
        if (now() - lastEvent >= 1000) {
          lastEvent = now()
          deps.bus.publish('pull.progress', { ref: item.ref, source: `peer:${peer.host}`, ...p })
        }
      },
    }).catch((err) => {
      if (attempt.signal.aborted) throw new Error(attempt.why())
      throw err
    })
  } finally {
    attempt.done()
    for (const name of names) deps.pulls.remove(name)
  }
}

async function pullFrom(deps: PrewarmDeps, item: PlanItem, ref: ImageRef, source: string): Promise<void> {
  const now = millis(deps.now)
  const viaMirror = source !== ref.domain
  const target = viaMirror ? onRegistry(ref, source) : ref
  const original = formatRef(ref)
  const attempt = attemptSignal(deps.config.prewarm)
  const signal = attempt.signal
  const remote = item.remote!
  let lastEvent = 0
  let last: PullProgress = { bytesDone: 0, bytesTotal: remote.compressedBytes }
  const inFlight = [original, formatRef(target)]
  for (const name of inFlight) deps.pulls.add(name)
  try {
    await deps.runtime
      .pull({
        name: familiarName(target.domain, target.repository),
        reference: target.digest ?? target.tag!,
        auth: deps.credentials.dockerAuth(source),
        signal,
        layers: remote.layers ?? [],
        totalBytes: remote.compressedBytes,
        onProgress: (p) => {
          attempt.progressed()
          last = p
          deps.onProgress?.(item.ref, { ...p, source })
          const t = now()
          if (t - lastEvent >= 1000) {
            lastEvent = t
            deps.bus.publish('pull.progress', { ref: item.ref, source, ...p })
          }
        },
      })
      .catch((err) => {
        if (signal.aborted) throw new PullError(attempt.why(), false)
        throw err
      })
    deps.bus.publish('pull.progress', { ref: item.ref, source, ...last, bytesDone: remote.compressedBytes })
    await nameAfterPull(deps.runtime, target, ref, viaMirror)
  } finally {
    attempt.done()
    for (const name of inFlight) deps.pulls.remove(name)
  }
}

/**
 * The abort signal of one pull attempt: cut when the runtime has reported no progress for
 * `stallSeconds` (a registry that stopped sending: nothing would ever arrive), and, when
 * `attemptTimeoutSeconds` is set, after that long in all. Any progress the runtime reports counts,
 * a byte downloaded or a layer being extracted, so the long extraction of a large layer is not a
 * stall; a large image on a slow link that keeps sending is never cut for its size.
 */
export function attemptSignal(opts: Pick<AgentConfig['prewarm'], 'stallSeconds' | 'attemptTimeoutSeconds'>): {
  signal: AbortSignal
  progressed(): void
  /** the transfer is over; what follows (the engine registering layers) is bounded by the attempt timeout only */
  transferred(): void
  why(): string
  done(): void
} {
  const controller = new AbortController()
  let reason = ''
  const cut = (why: string) => {
    if (controller.signal.aborted) return
    reason = why
    controller.abort(new Error(why))
  }
  const stallMs = opts.stallSeconds * 1000
  let stall = setTimeout(() => cut(`stalled: no progress for ${opts.stallSeconds} s`), stallMs)
  const outer =
    opts.attemptTimeoutSeconds === null
      ? null
      : setTimeout(
          () => cut(`attempt timed out after ${opts.attemptTimeoutSeconds} s`),
          opts.attemptTimeoutSeconds * 1000,
        )
  return {
    signal: controller.signal,
    progressed: () => {
      if (controller.signal.aborted) return
      // refresh() restarts the same timer: no allocation per progress line of a multi-GB pull
      stall = stall.refresh()
    },
    transferred: () => clearTimeout(stall),
    why: () => reason || 'aborted',
    done: () => {
      clearTimeout(stall)
      if (outer) clearTimeout(outer)
    },
  }
}

/**
 * An image pulled through a mirror is named after the mirror; give it its original name and take
 * the mirror's name off (never forced: the image keeps its original name, so only the name goes).
 * A pull by digest makes no tag, so a `repo:tag@digest` reference gets its tag here too. An image
 * wanted by digest alone keeps the mirror's digest name: Docker cannot give it another one.
 */
async function nameAfterPull(
  runtime: ContainerRuntime,
  pulled: ImageRef,
  ref: ImageRef,
  viaMirror: boolean,
): Promise<void> {
  if (!ref.tag || (!viaMirror && !ref.digest)) return
  const pulledName =
    familiarName(pulled.domain, pulled.repository) + (pulled.digest ? `@${pulled.digest}` : `:${pulled.tag}`)
  await runtime.tagImage(pulledName, `${familiarName(ref.domain, ref.repository)}:${ref.tag}`)
  if (viaMirror) await runtime.untagImage(pulledName)
}

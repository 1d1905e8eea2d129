// The rollout driver: reads each active rollout from the store, records the results of the hosts'
// prewarm commands, asks the planner (rollout-plan.ts) what to do next, stores that and sends the
// commands; for the hosts it starts, rollout-peers.ts says which peers each command names, or that
// the host waits for one. It is woken by a result, a host's hello, an API call, a host's changed
// image list while rollouts run, and a periodic tick (which also sees commands the hub failed for
// having no result in time). Every step is derived from stored state, so a restarted coordinator
// simply carries on: commands of hosts that were running are sent again by the hub when those hosts
// reconnect, and the agent answers a repeat from its record.
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { matchesSelector, parseSelector } from '../../labels.js'
import { fleetCompat, type CompatEvaluator } from '../compat.js'
import type { FleetStore } from '../store/fleet-store.js'
import {
  hostOutcome,
  planRollout,
  type ImageOutcome,
  type PlannerHost,
  type RolloutSpec,
  type RolloutState,
  type SourceKind,
  SOURCE_KINDS,
} from './plan.js'
import type { CoordinatorEvent, Rollout, RolloutChanges, RolloutHost } from './store.js'
import type { PeerGrant, PeerGrantRequest } from '../peer-grants.js'
import { planRolloutPeers, type RolloutPeerChoice } from './peers.js'
import { COORDINATOR_HOST, type CommandRecord, type HostDetail } from '../store/records.js'

/** the lease of the one replica that drives rollouts */
const LEASE = 'rollouts'

export interface RolloutDriverDeps {
  store: FleetStore
  evaluator: CompatEvaluator | null
  log: Logger
  /** signs what a prewarm command names for one host to fetch from another (peer-grants.ts); absent: no peers */
  grantPeer?: (g: PeerGrantRequest) => PeerGrant
  tickSeconds?: number
  /** another replica takes over this long after the driving one stopped renewing its lease */
  leaseSeconds?: number
}

export interface RolloutPreview {
  hosts: { hostId: string; images: string[]; skipped: ImageOutcome[] }[]
}

export class RolloutDriver {
  readonly name = 'rollouts'
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private again = false
  private leader = false
  /** rollouts to step in the next pass though no longer active */
  private readonly also = new Set<string>()
  /** the last pass found rollouts to drive */
  private activeSeen = false

  constructor(private readonly deps: RolloutDriverDeps) {}

  async start(): Promise<void> {
    this.timer = setInterval(() => void this.wake(), (this.deps.tickSeconds ?? 2) * 1000)
    this.timer.unref()
    void this.wake()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.running
  }

  /** Creates a rollout over the connected hosts the selector matches, and starts it. */
  async create(spec: RolloutSpec): Promise<Rollout> {
    const { store } = this.deps
    const hostIds = (await this.targets(spec)).map((h) => h.hostId)
    const id = randomUUID()
    const started = {
      type: 'rollout.started',
      hostId: COORDINATOR_HOST,
      data: { rolloutId: id, ...spec, hosts: hostIds },
    }
    await store.rollouts.createRollout(id, spec, hostIds, [started])
    this.deps.log.info({ rolloutId: id, hosts: hostIds.length, images: spec.images }, 'rollout started')
    await this.pass()
    return (await store.rollouts.rollout(id))!
  }

  /** What a rollout would do now: the hosts it would reach and the images known not to run on each. */
  async preview(spec: RolloutSpec): Promise<RolloutPreview> {
    const targets = await this.targets(spec)
    const incompatible = await this.knownIncompatible(
      targets.map((h) => h.hostId),
      spec.images,
    )
    const hosts = targets.map((h) => {
      const plan = planRollout({
        state: 'running',
        spec: { ...spec, maxParallelHosts: 1 },
        hosts: [
          { hostId: h.hostId, state: 'pending', connected: true, incompatible: incompatible.get(h.hostId) ?? [] },
        ],
      })
      const start = plan.start[0]
      const skip = plan.skip[0]
      return start
        ? { hostId: h.hostId, images: start.images, skipped: start.skipped }
        : { hostId: h.hostId, images: [], skipped: skip?.images ?? [] }
    })
    return { hosts }
  }

  /** cancel, pause or resume; answers the rollout as it is after the change, null when unknown */
  async control(id: string, to: 'cancel' | 'pause' | 'resume'): Promise<{ rollout: Rollout; changed: boolean } | null> {
    const { store } = this.deps
    const [from, next]: [RolloutState[], RolloutState] =
      to === 'cancel'
        ? [['running', 'paused'], 'cancelled']
        : to === 'pause'
          ? [['running'], 'paused']
          : [['paused'], 'running']
    const events = (r: Rollout) => (next === 'cancelled' ? [finishedEvent(r)] : [])
    const changed = await store.rollouts.transitionRollout(id, from, next, events)
    if (changed === null) return null
    if (changed) this.deps.log.info({ rolloutId: id, action: to }, 'rollout changed')
    // A cancelled rollout with nothing running is no longer active: this pass gives up its pending hosts.
    await this.pass(id)
    return { rollout: (await store.rollouts.rollout(id))!, changed }
  }

  /** A host said hello: it joins every running rollout whose selector it matches. */
  hostConnected(hostId: string): Promise<void> {
    return this.joinLater(hostId).catch((err: Error) => {
      this.deps.log.error({ hostId, err: err.message }, 'could not add a host that connected to its rollouts')
    })
  }

  private async joinLater(hostId: string): Promise<void> {
    const { store } = this.deps
    const host = await store.host(hostId)
    if (!host) return
    for (const id of await store.rollouts.activeRolloutIds()) {
      const r = await store.rollouts.rollout(id)
      if (!r || r.state !== 'running' || !matches(host, r.spec.selector)) continue
      if (await store.rollouts.addRolloutHost(id, hostId)) {
        this.deps.log.info({ rolloutId: id, hostId }, 'a host that connected joined a rollout')
      }
    }
    await this.wake()
  }

  /**
   * A host reported a changed image list: a host waiting for a peer may start now that a source
   * shows the image. Only while rollouts are active: image lists change all day on a large fleet.
   */
  imagesReported(): Promise<void> {
    return this.activeSeen ? this.pass() : Promise.resolve()
  }

  /** Runs a pass over every active rollout now, or once more after the pass under way; resolves when it is done. */
  wake(): Promise<void> {
    return this.pass()
  }

  /**
   * A pass over every active rollout, when this replica holds the rollouts lease; passes never
   * overlap, so no two steps of one rollout run at once. Resolves once a pass that started after
   * the call has finished.
   */
  private pass(also?: string): Promise<void> {
    if (also) this.also.add(also)
    if (this.running) {
      this.again = true
      return this.running
    }
    this.running = (async () => {
      do {
        this.again = false
        try {
          const leader = await this.deps.store.holdLease(LEASE, this.deps.leaseSeconds ?? 10)
          if (leader !== this.leader)
            this.deps.log.info({ leader }, leader ? 'driving rollouts' : 'no longer driving rollouts')
          this.leader = leader
          if (!leader) continue
          const ids = new Set([...(await this.deps.store.rollouts.activeRolloutIds()), ...this.also])
          this.also.clear()
          this.activeSeen = ids.size > 0
          for (const id of ids) {
            try {
              await this.step(id)
            } catch (err) {
              this.deps.log.error({ rolloutId: id, err: (err as Error).message }, 'a rollout step failed')
            }
          }
        } catch (err) {
          this.deps.log.error({ err: (err as Error).message }, 'cannot read the rollouts')
        }
      } while (this.again)
    })().finally(() => {
      this.running = null
    })
    return this.running
  }

  /**
   * One rollout: record finished commands, plan, store the step with its commands in one
   * transaction (only if the rollout was not paused or cancelled meanwhile).
   */
  private async step(id: string): Promise<void> {
    const { store } = this.deps
    const r = await store.rollouts.rollout(id)
    if (!r) return
    const changes: RolloutChanges = { expect: r.state, lease: LEASE, hosts: [], finish: null, events: [] }
    const hosts = new Map(r.hosts.map((h) => [h.hostId, { ...h }]))
    const change = (
      hostId: string,
      patch: RolloutChanges['hosts'][number]['patch'],
      prewarm?: Record<string, unknown>,
    ) => {
      changes.hosts.push({ hostId, patch, ...(prewarm ? { prewarm } : {}) })
      Object.assign(hosts.get(hostId)!, patch)
    }
    for (const h of r.hosts) {
      if (h.state !== 'running') continue
      const result = await this.resultOf(r, h)
      if (!result) continue
      change(h.hostId, result.patch)
      changes.events.push(result.event)
    }
    const now = { ...r, hosts: [...hosts.values()] }
    const pending = now.hosts.filter((h) => h.state === 'pending').map((h) => h.hostId)
    const incompatible = await this.knownIncompatible(pending, now.spec.images)
    const known = new Map((await this.deps.store.hosts()).map((h) => [h.hostId, h]))
    const awaySeconds = (hostId: string) => {
      const h = known.get(hostId)
      const seen = h?.lastSeen ? Date.parse(h.lastSeen) : NaN
      return h?.connected || Number.isNaN(seen) ? undefined : Math.max(0, (Date.now() - seen) / 1000)
    }
    const plan = planRollout({
      state: now.state,
      spec: now.spec,
      hosts: now.hosts.map((h) => ({
        hostId: h.hostId,
        state: h.state,
        connected: known.get(h.hostId)?.connected === true,
        awaySeconds: awaySeconds(h.hostId),
        incompatible: incompatible.get(h.hostId) ?? [],
      })),
    })
    const at = new Date().toISOString()
    for (const s of plan.skip) {
      change(s.hostId, { state: 'skipped', reason: s.reason, images: s.images, finishedAt: at })
      changes.events.push(hostFinishedEvent(now, s.hostId, 'skipped', s.reason, 0))
    }
    for (const a of plan.abandon) {
      change(a.hostId, { state: 'skipped', reason: a.reason, finishedAt: at })
      changes.events.push(hostFinishedEvent(now, a.hostId, 'skipped', a.reason, 0))
    }
    // Every connected pending host is offered, in order, and the first that need not wait for a peer
    // take the free slots: a host waiting for its rack's first source does not hold back other racks.
    const candidates = [...plan.start, ...plan.queue]
    const peers = await this.peerChoices(now, candidates, known)
    let slots = plan.start.length
    for (const s of candidates) {
      if (slots === 0) break
      const choice = peers.get(s.hostId) ?? {}
      // Waits for a peer to free a slot or to finish fetching: started by a later pass.
      if (choice === 'wait') continue
      slots--
      const named = this.grants(now, s.hostId, choice)
      const args = {
        images: s.images,
        hold: true,
        rollout: id,
        replaces: now.spec.replaces,
        ...(Object.keys(named).length ? { peers: named } : {}),
      }
      change(s.hostId, { state: 'running', images: s.skipped, startedAt: at }, args)
    }
    if (plan.finish) {
      changes.finish = plan.finish
      changes.events.push(finishedEvent({ ...now, state: plan.finish, hosts: [...hosts.values()] }))
    }
    if (!changes.hosts.length && !changes.finish) return
    if (!(await store.rollouts.applyRolloutChanges(id, changes))) return
    if (plan.finish) this.deps.log.info({ rolloutId: id, state: plan.finish }, 'rollout finished')
  }

  /** where each host to start fetches each image from (rollout-peers.ts), from the stored commands and facts */
  private async peerChoices(
    r: Rollout,
    starting: { hostId: string; images: string[] }[],
    fleet: Map<string, HostDetail>,
  ): Promise<Map<string, RolloutPeerChoice>> {
    if (!starting.length || !this.deps.grantPeer || r.spec.peers === false) return new Map()
    const runningArgs = new Map<string, Record<string, unknown>>()
    for (const h of r.hosts) {
      if (h.state !== 'running' || !h.commandId) continue
      const command = await this.deps.store.command(h.commandId)
      if (command) runningArgs.set(h.hostId, command.args)
    }
    const elsewhere: { hostId: string; args: Record<string, unknown> }[] = []
    for (const id of await this.deps.store.rollouts.activeRolloutIds()) {
      if (id === r.id) continue
      for (const h of (await this.deps.store.rollouts.rollout(id))?.hosts ?? []) {
        if (h.state !== 'running' || !h.commandId) continue
        const command = await this.deps.store.command(h.commandId)
        if (command) elsewhere.push({ hostId: h.hostId, args: command.args })
      }
    }
    const nowMs = Date.now()
    return planRolloutPeers({ spec: r.spec, hosts: r.hosts, runningArgs, elsewhere, fleet, starting, nowMs })
  }

  /** the signed peers of one host's prewarm command; a source that cannot be granted is left out */
  private grants(r: Rollout, fetcher: string, choice: Exclude<RolloutPeerChoice, 'wait'>): Record<string, PeerGrant[]> {
    const out: Record<string, PeerGrant[]> = {}
    for (const [ref, sources] of Object.entries(choice)) {
      const granted: PeerGrant[] = []
      for (const s of sources) {
        try {
          granted.push(
            this.deps.grantPeer!({
              server: s.hostId,
              fetcher,
              ref,
              configDigest: s.imageId,
              peerUrl: s.peerUrl,
              ...(s.key ? { serverKey: s.key } : {}),
            }),
          )
        } catch (err) {
          this.deps.log.warn({ rolloutId: r.id, server: s.hostId, err: (err as Error).message }, 'cannot grant a peer')
        }
      }
      // an empty list stays: it tells later passes the host held the image when it started
      if (granted.length || !sources.length) out[ref] = granted
    }
    return out
  }

  /** A running host whose command has a result becomes succeeded, skipped or failed; null while it runs. */
  private async resultOf(
    r: Rollout,
    h: RolloutHost,
  ): Promise<{ patch: Partial<RolloutHost>; event: CoordinatorEvent } | null> {
    const command = h.commandId ? await this.deps.store.command(h.commandId) : null
    if (command && (command.status === 'pending' || command.status === 'running')) return null
    const images = [...h.images, ...(command ? reportedImages(command) : [])]
    const outcome = command?.status === 'succeeded' ? hostOutcome(images) : null
    const state = outcome?.state ?? 'failed'
    const reason = outcome ? outcome.reason : `the prewarm command failed: ${command?.error ?? 'it is gone'}`
    const bytesPulled = images.reduce((s, i) => s + i.bytesPulled, 0)
    const finishedAt = new Date().toISOString()
    return {
      patch: { state, reason, images, bytesPulled, finishedAt },
      event: hostFinishedEvent(r, h.hostId, state, reason, bytesPulled, images),
    }
  }

  /** hosts connected to any replica */

  private async targets(spec: RolloutSpec): Promise<HostDetail[]> {
    return (await this.deps.store.hosts()).filter((h) => h.connected && matches(h, spec.selector))
  }

  /**
   * The images each of `hostIds` is known not to run, by the coordinator's compat evaluation over
   * the hosts' stored facts (GET /v1/compat); an image nobody has reported yet is not known.
   */
  private async knownIncompatible(
    hostIds: string[],
    images: string[],
  ): Promise<Map<string, PlannerHost['incompatible']>> {
    const out = new Map<string, PlannerHost['incompatible']>()
    if (!hostIds.length) return out
    const wanted = new Set(hostIds)
    const hosts = await this.deps.store.hosts()
    for (const ref of images) {
      for (const verdict of fleetCompat(ref, hosts, this.deps.evaluator).hosts) {
        if (!wanted.has(verdict.hostId) || verdict.compatible !== false) continue
        const list = out.get(verdict.hostId) ?? []
        list.push({ ref, reason: verdict.reason })
        out.set(verdict.hostId, list)
      }
    }
    return out
  }
}

function hostFinishedEvent(
  r: Rollout,
  hostId: string,
  state: string,
  reason: string | null,
  bytesPulled: number,
  images?: ImageOutcome[],
): CoordinatorEvent {
  const data = { rolloutId: r.id, state, reason, bytesPulled, ...(images ? { images } : {}) }
  return { type: 'rollout.host.finished', hostId, data }
}

function finishedEvent(r: Rollout): CoordinatorEvent {
  return {
    type: 'rollout.finished',
    hostId: COORDINATOR_HOST,
    data: { rolloutId: r.id, state: r.state, ...rolloutTotals(r) },
  }
}

/** the per-image outcomes of a prewarm command's result (a PrewarmReport) */
function reportedImages(command: CommandRecord): ImageOutcome[] {
  const results = (command.result as { results?: unknown } | null)?.results
  if (!Array.isArray(results)) return []
  return results.map((raw) => {
    const r = raw as Partial<ImageOutcome>
    return {
      ref: String(r.ref),
      status: r.status ?? 'failed',
      reason: r.reason ?? '',
      ...(r.skip ? { skip: r.skip } : {}),
      bytesPulled: typeof r.bytesPulled === 'number' ? r.bytesPulled : 0,
      ...(SOURCE_KINDS.includes(r.sourceKind as SourceKind) ? { sourceKind: r.sourceKind } : {}),
      ...peerFailures((raw as { peerFailures?: unknown }).peerFailures),
    }
  })
}

/**
 * the hosts of a result's `peerFailures` ({ host, reason, breach? }[]), and those of them reported
 * for a breach; nothing when absent or malformed
 */
function peerFailures(raw: unknown): { peerFailures?: string[]; peerBreaches?: string[] } {
  if (!Array.isArray(raw)) return {}
  const failures = raw.filter((f): f is { host: string; breach?: unknown } => typeof f?.host === 'string')
  const breaches = failures.filter((f) => f.breach === true).map((f) => f.host)
  return {
    ...(failures.length ? { peerFailures: failures.map((f) => f.host) } : {}),
    ...(breaches.length ? { peerBreaches: breaches } : {}),
  }
}

function matches(host: HostDetail, selector: string): boolean {
  return matchesSelector(host.labels, parseSelector(selector))
}

/** one host's bytes by where they came from; pulls reported without a source kind are left out */
export function hostBytesBySource(h: RolloutHost): Record<SourceKind, number> {
  const out = { registry: 0, mirror: 0, peer: 0 }
  for (const i of h.images) if (i.status === 'pulled' && i.sourceKind) out[i.sourceKind] += i.bytesPulled
  return out
}

export function rolloutTotals(r: Rollout): {
  hosts: Record<string, number>
  bytesPulled: number
  /** bytes by where they came from; pulls an older agent reported without a source kind are left out */
  bytesBySource: Record<SourceKind, number>
} {
  const hosts: Record<string, number> = { pending: 0, running: 0, succeeded: 0, skipped: 0, failed: 0 }
  const bytesBySource = { registry: 0, mirror: 0, peer: 0 }
  for (const h of r.hosts) {
    hosts[h.state]++
    for (const [kind, n] of Object.entries(hostBytesBySource(h))) bytesBySource[kind as SourceKind] += n
  }
  return { hosts, bytesPulled: r.hosts.reduce((s, h) => s + h.bytesPulled, 0), bytesBySource }
}

// The rollout driver: reads each active rollout from the store, records the results of the hosts'
// prewarm commands, asks the planner (rollout-plan.ts) what to do next, stores that and sends the
// commands. It is woken by a result, a host's hello, an API call, and a periodic tick (which also
// sees commands the hub failed for having no result in time). Every step is derived from stored
// state, so a restarted coordinator simply carries on: commands of hosts that were running are
// sent again by the hub when those hosts reconnect, and the agent answers a repeat from its record.
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { matchesSelector, parseSelector } from '../labels.js'
import { fleetCompat, type CompatEvaluator } from './compat.js'
import {
  hostOutcome,
  isFinished,
  planRollout,
  type ImageOutcome,
  type PlannerHost,
  type RolloutSpec,
  type RolloutState,
} from './rollout-plan.js'
import type { Rollout, RolloutHost } from './rollout-store.js'
import { COORDINATOR_HOST, type CommandRecord, type FleetStore, type HostDetail } from './store.js'

export interface RolloutDriverDeps {
  store: FleetStore
  evaluator: CompatEvaluator | null
  isConnected: (hostId: string) => boolean
  /** sends a host its commands that have no result yet (AgentHub.dispatch) */
  dispatch: (hostId: string) => void
  log: Logger
  tickSeconds?: number
}

export interface RolloutPreview {
  hosts: { hostId: string; images: string[]; skipped: ImageOutcome[] }[]
}

export class RolloutDriver {
  readonly name = 'rollouts'
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private again = false

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
    const hostIds = this.targets(spec).map((h) => h.hostId)
    const id = randomUUID()
    await store.write(() => {
      store.rollouts.createRollout(id, spec, hostIds)
      store.recordCoordinatorEvent('rollout.started', COORDINATOR_HOST, { rolloutId: id, ...spec, hosts: hostIds })
    })
    this.deps.log.info({ rolloutId: id, hosts: hostIds.length, images: spec.images }, 'rollout started')
    await this.step(id)
    return store.rollouts.rollout(id)!
  }

  /** What a rollout would do now: the hosts it would reach and the images known not to run on each. */
  preview(spec: RolloutSpec): RolloutPreview {
    const targets = this.targets(spec)
    const incompatible = this.knownIncompatible(
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
    const changed = await store.write(() => {
      const r = store.rollouts.rollout(id)
      if (!r) return null
      const next: RolloutState | null =
        to === 'cancel'
          ? isFinished(r.state)
            ? null
            : 'cancelled'
          : to === 'pause'
            ? r.state === 'running'
              ? 'paused'
              : null
            : r.state === 'paused'
              ? 'running'
              : null
      if (next === null) return false
      store.rollouts.setRolloutState(id, next)
      if (next === 'cancelled') this.recordFinished(store.rollouts.rollout(id)!)
      return true
    })
    if (changed === null) return null
    if (changed) this.deps.log.info({ rolloutId: id, action: to }, 'rollout changed')
    await this.step(id)
    return { rollout: store.rollouts.rollout(id)!, changed }
  }

  /** sends a host its commands that have no result yet */
  dispatch(hostId: string): void {
    this.deps.dispatch(hostId)
  }

  /** A host said hello: it joins every running rollout whose selector it matches. */
  hostConnected(hostId: string): Promise<void> {
    return this.joinLater(hostId).catch((err: Error) => {
      this.deps.log.error({ hostId, err: err.message }, 'could not add a host that connected to its rollouts')
    })
  }

  private async joinLater(hostId: string): Promise<void> {
    const { store } = this.deps
    const host = store.host(hostId)
    if (!host) return
    const joined = await store.write(() =>
      store.rollouts.activeRolloutIds().filter((id) => {
        const r = store.rollouts.rollout(id)
        if (!r || r.state !== 'running' || !matches(host, r.spec.selector)) return false
        return store.rollouts.addRolloutHost(id, hostId)
      }),
    )
    for (const id of joined) this.deps.log.info({ rolloutId: id, hostId }, 'a host that connected joined a rollout')
    await this.wake()
  }

  /** Runs a pass over every active rollout now, or once more after the pass under way. */
  wake(): Promise<void> {
    if (this.running) {
      this.again = true
      return this.running
    }
    this.running = (async () => {
      do {
        this.again = false
        for (const id of this.deps.store.rollouts.activeRolloutIds()) {
          try {
            await this.step(id)
          } catch (err) {
            this.deps.log.error({ rolloutId: id, err: (err as Error).message }, 'a rollout step failed')
          }
        }
      } while (this.again)
    })().finally(() => {
      this.running = null
    })
    return this.running
  }

  /** One rollout: record finished commands, plan, store the step, send its commands. */
  private async step(id: string): Promise<void> {
    const { store } = this.deps
    const started = await store.write(() => {
      const r = store.rollouts.rollout(id)
      if (!r) return []
      for (const h of r.hosts) if (h.state === 'running') this.recordResult(r, h)
      const now = store.rollouts.rollout(id)!
      const pending = now.hosts.filter((h) => h.state === 'pending').map((h) => h.hostId)
      const incompatible = this.knownIncompatible(pending, now.spec.images)
      const plan = planRollout({
        state: now.state,
        spec: now.spec,
        hosts: now.hosts.map((h) => ({
          hostId: h.hostId,
          state: h.state,
          connected: this.deps.isConnected(h.hostId),
          incompatible: incompatible.get(h.hostId) ?? [],
        })),
      })
      const at = new Date().toISOString()
      for (const s of plan.skip) {
        store.rollouts.updateRolloutHost(id, s.hostId, {
          state: 'skipped',
          reason: s.reason,
          images: s.images,
          finishedAt: at,
        })
        this.recordHostFinished(now, s.hostId, 'skipped', s.reason, 0)
      }
      for (const a of plan.abandon) {
        store.rollouts.updateRolloutHost(id, a.hostId, { state: 'skipped', reason: a.reason, finishedAt: at })
        this.recordHostFinished(now, a.hostId, 'skipped', a.reason, 0)
      }
      for (const s of plan.start) {
        const args = { images: s.images, hold: true, rollout: id, replaces: now.spec.replaces }
        const commandId = store.createCommand(s.hostId, 'prewarm', args)
        store.rollouts.updateRolloutHost(id, s.hostId, {
          state: 'running',
          commandId,
          images: s.skipped,
          startedAt: at,
        })
      }
      if (plan.finish) {
        store.rollouts.setRolloutState(id, plan.finish)
        this.recordFinished(store.rollouts.rollout(id)!)
        this.deps.log.info({ rolloutId: id, state: plan.finish }, 'rollout finished')
      }
      return plan.start.map((s) => s.hostId)
    })
    for (const hostId of started) this.deps.dispatch(hostId)
  }

  /** Within a write: a running host whose command has a result becomes succeeded, skipped or failed. */
  private recordResult(r: Rollout, h: RolloutHost): void {
    const { store } = this.deps
    const command = h.commandId ? store.command(h.commandId) : null
    if (command && (command.status === 'pending' || command.status === 'running')) return
    const images = [...h.images, ...(command ? reportedImages(command) : [])]
    const outcome = command?.status === 'succeeded' ? hostOutcome(images) : null
    const state = outcome?.state ?? 'failed'
    const reason = outcome ? outcome.reason : `the prewarm command failed: ${command?.error ?? 'it is gone'}`
    const bytesPulled = images.reduce((s, i) => s + i.bytesPulled, 0)
    const finishedAt = new Date().toISOString()
    store.rollouts.updateRolloutHost(r.id, h.hostId, { state, reason, images, bytesPulled, finishedAt })
    this.recordHostFinished(r, h.hostId, state, reason, bytesPulled, images)
  }

  private recordHostFinished(
    r: Rollout,
    hostId: string,
    state: string,
    reason: string | null,
    bytesPulled: number,
    images?: ImageOutcome[],
  ): void {
    const data = { rolloutId: r.id, state, reason, bytesPulled, ...(images ? { images } : {}) }
    this.deps.store.recordCoordinatorEvent('rollout.host.finished', hostId, data)
  }

  private recordFinished(r: Rollout): void {
    const totals = rolloutTotals(r)
    this.deps.store.recordCoordinatorEvent('rollout.finished', COORDINATOR_HOST, {
      rolloutId: r.id,
      state: r.state,
      ...totals,
    })
  }

  private targets(spec: RolloutSpec): HostDetail[] {
    return this.deps.store.hosts().filter((h) => this.deps.isConnected(h.hostId) && matches(h, spec.selector))
  }

  /**
   * The images each of `hostIds` is known not to run, by the coordinator's compat evaluation over
   * the hosts' stored facts (GET /v1/compat); an image nobody has reported yet is not known.
   */
  private knownIncompatible(hostIds: string[], images: string[]): Map<string, PlannerHost['incompatible']> {
    const out = new Map<string, PlannerHost['incompatible']>()
    if (!hostIds.length) return out
    const wanted = new Set(hostIds)
    const hosts = this.deps.store.hosts()
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
    }
  })
}

function matches(host: HostDetail, selector: string): boolean {
  return matchesSelector(host.labels, parseSelector(selector))
}

export function rolloutTotals(r: Rollout): { hosts: Record<string, number>; bytesPulled: number } {
  const hosts: Record<string, number> = { pending: 0, running: 0, succeeded: 0, skipped: 0, failed: 0 }
  for (const h of r.hosts) hosts[h.state]++
  return { hosts, bytesPulled: r.hosts.reduce((s, h) => s + h.bytesPulled, 0) }
}

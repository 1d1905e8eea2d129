// The rollout driver: reads each active rollout from the store, records the results of the hosts'
// prewarm commands, asks the planner (plan.ts) what to do next, stores that and sends the
// commands (step.ts); for the hosts it starts, peers.ts says which peers each command names, or that
// the host waits for one. It is woken by a result, a host's hello, an API call, a host's changed
// image list while rollouts run, and a periodic tick (which also sees commands the hub failed for
// having no result in time). Every step is derived from stored state, so a restarted coordinator
// simply carries on: commands of hosts that were running are sent again by the hub when those hosts
// reconnect, and the agent answers a repeat from its record.
import { randomUUID } from 'node:crypto'
import { matchesSelector, parseSelector } from '../../labels.js'
import { COORDINATOR_HOST, type HostDetail } from '../store/records.js'
import { LEASE, type RolloutDriverDeps } from './deps.js'
import { finishedEvent } from './events.js'
import { knownIncompatible } from './incompatible.js'
import { planRollout, type ImageOutcome, type RolloutSpec, type RolloutState } from './plan.js'
import { stepRollout } from './step.js'
import type { Rollout } from './store.js'

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
    const incompatible = await knownIncompatible(
      this.deps.store,
      this.deps.evaluator,
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
              await stepRollout(this.deps, id)
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

  /** hosts connected to any replica */
  private async targets(spec: RolloutSpec): Promise<HostDetail[]> {
    return (await this.deps.store.hosts()).filter((h) => h.connected && matches(h, spec.selector))
  }
}

function matches(host: HostDetail, selector: string): boolean {
  return matchesSelector(host.labels, parseSelector(selector))
}

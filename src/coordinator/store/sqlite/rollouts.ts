// The RolloutStore over SQLite: each write one group-committed write of SqliteFleet, with the
// commands and the coordinator's events it brings.
import type { RolloutSpec, RolloutState } from '../../rollouts/plan.js'
import type { CoordinatorEvent, Rollout, RolloutChanges, RolloutStore } from '../../rollouts/store.js'
import type { SqliteFleet } from './engine.js'

/** RolloutStore over SqliteFleet: each write one group-committed write, events and commands included. */
export class SqliteRollouts implements RolloutStore {
  constructor(
    private readonly db: SqliteFleet,
    private readonly commandCreated: (hostId: string) => void,
  ) {}

  private record(events: CoordinatorEvent[]): void {
    for (const e of events) this.db.recordCoordinatorEvent(e.type, e.hostId, e.data)
  }

  createRollout(id: string, spec: RolloutSpec, hostIds: string[], events: CoordinatorEvent[]): Promise<void> {
    return this.db.write(() => {
      this.db.rollouts.createRollout(id, spec, hostIds)
      this.record(events)
    })
  }

  async rollout(id: string) {
    return this.db.rollouts.rollout(id)
  }

  async rollouts(limit: number) {
    return this.db.rollouts.rollouts(limit)
  }

  async activeRolloutIds() {
    return this.db.rollouts.activeRolloutIds()
  }

  transitionRollout(
    id: string,
    from: RolloutState[],
    to: RolloutState,
    eventsOf: (r: Rollout) => CoordinatorEvent[],
  ): Promise<boolean | null> {
    return this.db.write(() => {
      const r = this.db.rollouts.rollout(id)
      if (!r) return null
      if (!from.includes(r.state)) return false
      this.db.rollouts.setRolloutState(id, to)
      this.record(eventsOf(this.db.rollouts.rollout(id)!))
      return true
    })
  }

  addRolloutHost(id: string, hostId: string): Promise<boolean> {
    return this.db.write(() => {
      if (this.db.rollouts.rollout(id)?.state !== 'running') return false
      return this.db.rollouts.addRolloutHost(id, hostId)
    })
  }

  async applyRolloutChanges(id: string, changes: RolloutChanges): Promise<boolean> {
    const started: string[] = []
    const applied = await this.db.write(() => {
      if (this.db.rollouts.rollout(id)?.state !== changes.expect) return false
      for (const h of changes.hosts) {
        const commandId = h.prewarm ? this.db.createCommand(h.hostId, 'prewarm', h.prewarm) : undefined
        if (commandId) started.push(h.hostId)
        this.db.rollouts.updateRolloutHost(id, h.hostId, { ...h.patch, ...(commandId ? { commandId } : {}) })
      }
      if (changes.finish) this.db.rollouts.setRolloutState(id, changes.finish)
      this.record(changes.events)
      return true
    })
    for (const hostId of started) this.commandCreated(hostId)
    return applied
  }

  async rolloutCounts() {
    return this.db.rollouts.rolloutCounts()
  }

  async rolloutHostCounts() {
    return this.db.rollouts.rolloutHostCounts()
  }

  async rolloutBytesPulled() {
    return this.db.rollouts.rolloutBytesPulled()
  }

  async rolloutBytesBySource() {
    return this.db.rollouts.rolloutBytesBySource()
  }
}

// One step of one rollout: record the results of finished commands, ask the planner (plan.ts)
// what to do next, and store that with its commands in one transaction (only if the rollout was not
// paused or cancelled meanwhile). For the hosts it starts, peers.ts says which peers each command
// names, or that the host waits for one.
import type { HostDetail } from '../store/records.js'
import { LEASE, type RolloutDriverDeps } from './deps.js'
import { finishedEvent, hostFinishedEvent } from './events.js'
import { knownIncompatible } from './incompatible.js'
import type { PeerGrant } from '../peer-grants.js'
import { planRolloutPeers, type RolloutPeerChoice } from './peers.js'
import { planRollout } from './plan.js'
import { hostResult } from './results.js'
import type { Rollout, RolloutChanges } from './store.js'

/**
 * One rollout: record finished commands, plan, store the step with its commands in one
 * transaction (only if the rollout was not paused or cancelled meanwhile).
 */
export async function stepRollout(deps: RolloutDriverDeps, id: string): Promise<void> {
  const { store } = deps
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
    const result = await hostResult(store, r, h)
    if (!result) continue
    change(h.hostId, result.patch)
    changes.events.push(result.event)
  }
  const now = { ...r, hosts: [...hosts.values()] }
  const pending = now.hosts.filter((h) => h.state === 'pending').map((h) => h.hostId)
  const incompatible = await knownIncompatible(store, deps.evaluator, pending, now.spec.images)
  const known = new Map((await store.hosts()).map((h) => [h.hostId, h]))
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
  const peers = await peerChoices(deps, now, candidates, known)
  let slots = plan.start.length
  for (const s of candidates) {
    if (slots === 0) break
    const choice = peers.get(s.hostId) ?? {}
    // Waits for a peer to free a slot or to finish fetching: started by a later pass.
    if (choice === 'wait') continue
    slots--
    const named = grants(deps, now, s.hostId, choice)
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
  if (plan.finish) deps.log.info({ rolloutId: id, state: plan.finish }, 'rollout finished')
}

/** where each host to start fetches each image from (rollout-peers.ts), from the stored commands and facts */
async function peerChoices(
  deps: RolloutDriverDeps,
  r: Rollout,
  starting: { hostId: string; images: string[] }[],
  fleet: Map<string, HostDetail>,
): Promise<Map<string, RolloutPeerChoice>> {
  if (!starting.length || !deps.grantPeer || r.spec.peers === false) return new Map()
  const runningArgs = new Map<string, Record<string, unknown>>()
  for (const h of r.hosts) {
    if (h.state !== 'running' || !h.commandId) continue
    const command = await deps.store.command(h.commandId)
    if (command) runningArgs.set(h.hostId, command.args)
  }
  const elsewhere: { hostId: string; args: Record<string, unknown> }[] = []
  for (const id of await deps.store.rollouts.activeRolloutIds()) {
    if (id === r.id) continue
    for (const h of (await deps.store.rollouts.rollout(id))?.hosts ?? []) {
      if (h.state !== 'running' || !h.commandId) continue
      const command = await deps.store.command(h.commandId)
      if (command) elsewhere.push({ hostId: h.hostId, args: command.args })
    }
  }
  const nowMs = Date.now()
  return planRolloutPeers({ spec: r.spec, hosts: r.hosts, runningArgs, elsewhere, fleet, starting, nowMs })
}

/** the signed peers of one host's prewarm command; a source that cannot be granted is left out */
function grants(
  deps: RolloutDriverDeps,
  r: Rollout,
  fetcher: string,
  choice: Exclude<RolloutPeerChoice, 'wait'>,
): Record<string, PeerGrant[]> {
  const out: Record<string, PeerGrant[]> = {}
  for (const [ref, sources] of Object.entries(choice)) {
    const granted: PeerGrant[] = []
    for (const s of sources) {
      try {
        granted.push(
          deps.grantPeer!({
            server: s.hostId,
            fetcher,
            ref,
            configDigest: s.imageId,
            peerUrl: s.peerUrl,
            ...(s.key ? { serverKey: s.key } : {}),
          }),
        )
      } catch (err) {
        deps.log.warn({ rolloutId: r.id, server: s.hostId, err: (err as Error).message }, 'cannot grant a peer')
      }
    }
    // an empty list stays: it tells later passes the host held the image when it started
    if (granted.length || !sources.length) out[ref] = granted
  }
  return out
}

// What the rollout driver and its steps work with.
import type { Logger } from 'pino'
import type { CompatEvaluator } from '../compat.js'
import type { PeerGrant, PeerGrantRequest } from '../peer-grants.js'
import type { FleetStore } from '../store/fleet-store.js'

/** the lease of the one replica that drives rollouts */
export const LEASE = 'rollouts'

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

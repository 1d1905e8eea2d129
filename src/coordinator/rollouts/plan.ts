// A rollout's next step, decided from its stored state alone. Pure: the driver (rollouts.ts) reads
// the state, asks this what to do, stores the step and sends the commands it names.
//
// Rules: at most maxParallelHosts hosts running; a host whose driver is known not to run an image
// is not asked for it, and a host that would be asked for nothing is skipped without a command;
// after maxFailedHosts failures no host is started; a paused rollout starts nothing; the rollout
// finishes once nothing runs and nothing is left to start.

export const ROLLOUT_STATES = ['running', 'paused', 'succeeded', 'failed', 'cancelled'] as const
export type RolloutState = (typeof ROLLOUT_STATES)[number]
export const ROLLOUT_HOST_STATES = ['pending', 'running', 'succeeded', 'skipped', 'failed'] as const
export type RolloutHostState = (typeof ROLLOUT_HOST_STATES)[number]

/** one image's outcome on one host, as the agent's prewarm reported it or as the coordinator decided */
export interface ImageOutcome {
  ref: string
  status: 'pulled' | 'present' | 'skipped' | 'failed'
  reason: string
  /** skipped because the driver cannot run it, or because it does not fit on the disk */
  skip?: 'incompatible' | 'disk'
  bytesPulled: number
  /** where a pulled image's bytes came from, as the agent reported it */
  sourceKind?: SourceKind
  /** the peers named for it that failed, as the agent reported them */
  peerFailures?: string[]
  /** the peers among them whose archive named images on the fetching host */
  peerBreaches?: string[]
}

export const SOURCE_KINDS = ['registry', 'mirror', 'peer'] as const
export type SourceKind = (typeof SOURCE_KINDS)[number]

export interface RolloutSpec {
  images: string[]
  /** a label selector over the hosts; '' selects every host */
  selector: string
  maxParallelHosts: number
  /** no host is started once this many have failed; null: no limit */
  maxFailedHosts: number | null
  /** earlier rollouts whose holds this one replaces on the hosts it reaches */
  replaces: string[]
  /**
   * hosts that serve peers hand the images to each other (peer-sources.ts); false: every host reads
   * its registry or mirrors. Absent in rollouts stored before peers: as true.
   */
  peers?: boolean
  /** hosts reading an image from its registry over the rollout, per value of peerAffinityLabel; absent: 1 */
  registryParallel?: number
  /** a host label (e.g. `rack`): registry turns counted per value, peers with the same value preferred */
  peerAffinityLabel?: string | null
}

export interface PlannerHost {
  hostId: string
  state: RolloutHostState
  connected: boolean
  /** how long a host that is not connected has been away, in seconds; absent: unknown, long gone */
  awaySeconds?: number
  /** images the host's stored facts say its driver cannot run, with why */
  incompatible: { ref: string; reason: string }[]
}

export interface RolloutStep {
  /** send the prewarm of `images` to these hosts; `skipped` are the images left out, decided here */
  start: { hostId: string; images: string[]; skipped: ImageOutcome[] }[]
  /**
   * connected pending hosts past the free slots, in order, as `start` names them: when a host in
   * `start` has to wait for a peer, the next of these that need not takes its slot (rollouts.ts)
   */
  queue: { hostId: string; images: string[]; skipped: ImageOutcome[] }[]
  /** hosts not asked at all: every image is known not to run there */
  skip: { hostId: string; reason: string; images: ImageOutcome[] }[]
  /** pending hosts that will not be started (cancelled, too many failures, not connected at the end) */
  abandon: { hostId: string; reason: string }[]
  /** the rollout's new finished state, when this step finishes it */
  finish: Exclude<RolloutState, 'running' | 'paused'> | null
}

export function isFinished(state: RolloutState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled'
}

/**
 * A pending host that is away is waited for this long before the rollout gives it up: a coordinator
 * restart (or a replica's death) disconnects every agent for the seconds their reconnect takes.
 */
export const AWAY_GRACE_SECONDS = 120

export function planRollout(input: {
  state: RolloutState
  spec: RolloutSpec
  hosts: PlannerHost[]
  awayGraceSeconds?: number
}): RolloutStep {
  const { state, spec, hosts } = input
  const grace = input.awayGraceSeconds ?? AWAY_GRACE_SECONDS
  const step: RolloutStep = { start: [], queue: [], skip: [], abandon: [], finish: null }
  const pending = hosts.filter((h) => h.state === 'pending')
  if (state === 'cancelled') {
    step.abandon = pending.map((h) => ({ hostId: h.hostId, reason: 'the rollout was cancelled' }))
    return step
  }
  if (isFinished(state) || state === 'paused') return step
  const running = hosts.filter((h) => h.state === 'running').length
  const failed = hosts.filter((h) => h.state === 'failed').length
  const stopped = spec.maxFailedHosts !== null && failed >= spec.maxFailedHosts
  let slots = Math.max(0, spec.maxParallelHosts - running)
  const waiting: PlannerHost[] = []
  for (const host of pending) {
    if (stopped) {
      const reason = `not started: ${failed} hosts failed, maxFailedHosts is ${spec.maxFailedHosts}`
      step.abandon.push({ hostId: host.hostId, reason })
      continue
    }
    const known = new Map(host.incompatible.map((i) => [i.ref, i.reason]))
    const skipped = spec.images
      .filter((ref) => known.has(ref))
      .map((ref): ImageOutcome => ({
        ref,
        status: 'skipped',
        reason: known.get(ref)!,
        skip: 'incompatible',
        bytesPulled: 0,
      }))
    const images = spec.images.filter((ref) => !known.has(ref))
    if (images.length === 0) {
      step.skip.push({ hostId: host.hostId, reason: skipReason(skipped), images: skipped })
    } else if (host.connected && slots > 0) {
      step.start.push({ hostId: host.hostId, images, skipped })
      slots--
    } else {
      if (host.connected) step.queue.push({ hostId: host.hostId, images, skipped })
      waiting.push(host)
    }
  }
  if (running > 0 || step.start.length > 0) return step
  // Nothing runs: what is still waiting is a host that is not connected. It is waited for while it
  // has been away for less than the grace (it is reconnecting), and given up after.
  const comingBack = (h: PlannerHost) => h.connected || (h.awaySeconds ?? Infinity) < grace
  if (!stopped && waiting.some(comingBack)) return step
  for (const h of waiting) step.abandon.push({ hostId: h.hostId, reason: 'not started: the host is not connected' })
  step.finish = stopped || failed > 0 ? 'failed' : 'succeeded'
  return step
}

/** a host's state and reason once its images' outcomes are known */
export function hostOutcome(images: ImageOutcome[]): { state: RolloutHostState; reason: string | null } {
  const failed = images.filter((i) => i.status === 'failed')
  if (failed.length)
    return { state: 'failed', reason: failed.map((i) => `pull error: ${i.ref}: ${i.reason}`).join('; ') }
  if (images.length > 0 && images.every((i) => i.status === 'skipped'))
    return { state: 'skipped', reason: skipReason(images) }
  return { state: 'succeeded', reason: null }
}

/** "incompatible driver", "no room" or the agent's own words, per image */
export function skipReason(images: ImageOutcome[]): string {
  return images
    .map((i) => {
      const kind = i.skip === 'incompatible' ? 'incompatible driver' : i.skip === 'disk' ? 'no room' : 'skipped'
      return `${kind}: ${i.ref}: ${i.reason}`
    })
    .join('; ')
}

// Which peers the hosts a rollout starts now fetch each image from, derived from stored state alone:
// the rollout's hosts (states, outcomes), the prewarm commands of its running hosts (whom each was
// sent to) and the fleet's hosts (labels, what each advertised in its hello, the images it reported).
// Pure: the driver (rollouts.ts) gathers these, asks this, signs the grants and sends the commands.
//
// The export URL names the image id the serving host itself reported for the reference: that host
// answers only for the image it holds under that name (and id), so no other id would be served. The
// coordinator has no registry credentials of its own to read the manifest with; and it need not
// trust this id: the fetching host checks what it loaded against the config digest of the registry's
// manifest, which it reads anyway, so a source holding something else costs one failed attempt and
// never wrong content.
import { parseImageRef, parseRepoDigest, qualifiedRef, type ImageRef } from '../../registry/reference.js'
import type { ReportedImage } from '../../protocol.js'
import type { PeerGrantKey } from '../peer-advert.js'
import { planPeerSources, type PeerSourceHost } from '../peer-sources.js'
import type { RolloutSpec } from './plan.js'
import type { RolloutHost } from './store.js'
import type { HostDetail } from '../store/records.js'

/**
 * A host that finished with the image is counted as a source to come for this long while its
 * reported images do not show it yet (the agent reports its images within seconds of a change);
 * after that it is passed over, and the host that waited for it reads the registry.
 */
export const FACTS_GRACE_SECONDS = 60

/** a source the rollout's hosts reported this many failures against is not named again in it */
export const SOURCE_FAILURES_LIMIT = 2

const IMAGE_ID = /^sha256:[0-9a-f]{64}$/

/** one source named for one image: the host, where its listener is, and the image id it holds */
export interface PeerSourceRef {
  hostId: string
  peerUrl: string
  imageId: string
  /** the credential the host connected with: its grants are signed with it */
  key?: PeerGrantKey
}

export interface RolloutPeersInput {
  spec: RolloutSpec
  /** the rollout's hosts as they are after this pass's results */
  hosts: RolloutHost[]
  /** the args of the prewarm commands of the rollout's running hosts, by host */
  runningArgs: Map<string, Record<string, unknown>>
  /** the running prewarm commands of the other active rollouts: their uploads take sources' slots too */
  elsewhere?: { hostId: string; args: Record<string, unknown> }[]
  /** every host the coordinator knows */
  fleet: Map<string, HostDetail>
  /** what planRollout would start now, in order */
  starting: { hostId: string; images: string[] }[]
  nowMs: number
}

/**
 * per host to start: `wait` (not this pass), or the peers to name per image (absent: the registry;
 * an empty list: the host holds the image already)
 */
export type RolloutPeerChoice = 'wait' | Record<string, PeerSourceRef[]>

export function planRolloutPeers(input: RolloutPeersInput): Map<string, RolloutPeerChoice> {
  const out = new Map<string, RolloutPeerChoice>()
  for (const s of input.starting) out.set(s.hostId, {})
  if (input.spec.peers === false) return out
  // Hosts that serve come first: a registry turn or a peer's slot given to one of them adds a source;
  // given to a host that only fetches, it adds none. A host waiting for one image is not started for
  // the others either (one command per host), which frees what it was given: plan again without it
  // until no host is added to the waiting.
  const serves = (hostId: string) => !!input.fleet.get(hostId)?.peers
  let starting = [...input.starting].sort((a, b) => Number(serves(b.hostId)) - Number(serves(a.hostId)))
  for (;;) {
    const choices = new Map<string, Record<string, PeerSourceRef[]>>(starting.map((s) => [s.hostId, {}]))
    const waiting = new Set<string>()
    // A source's maxUploads is for the whole host: what it serves now for any image of any rollout
    // counts, and so does what this pass gives it for each image. A host wanting two images from a
    // source with one slot is given another source or a registry turn for the second; failing both it
    // takes that source twice rather than wait for itself (the agent then meets a 503 for one and
    // moves to its next source).
    const uploads = uploadsNow(input)
    const claimed = new Map<string, Map<string, number>>()
    for (const ref of input.spec.images) {
      // A host that holds the image (by digest) already reports it present: no registry turn, no slot.
      // Its command names an empty list of peers for the image, which says so to later passes: by
      // then its reported images show the image whether it held it or has just pulled it.
      const held = starting.filter((s) => s.images.includes(ref) && holdsNow(input, s.hostId, ref))
      for (const s of held) choices.get(s.hostId)![ref] = []
      const wanting = starting.filter((s) => s.images.includes(ref) && !held.includes(s))
      if (!wanting.length) continue
      for (const c of planImage(input, ref, wanting, uploads, claimed)) {
        if (c.via === 'wait') waiting.add(c.hostId)
        else if (c.via === 'peers' && c.peers.length) {
          choices.get(c.hostId)![ref] = c.peers
          const first = c.peers[0].hostId
          uploads.set(first, (uploads.get(first) ?? 0) + 1)
          const own = claimed.get(c.hostId) ?? new Map<string, number>()
          claimed.set(c.hostId, own.set(first, (own.get(first) ?? 0) + 1))
        }
      }
    }
    if (!waiting.size) {
      for (const [hostId, peers] of choices) out.set(hostId, peers)
      return out
    }
    for (const hostId of waiting) out.set(hostId, 'wait')
    starting = starting.filter((s) => !waiting.has(s.hostId))
    if (!starting.length) return out
  }
}

/** the host's reported images show `ref` under a name it is looked up by */
/**
 * Only for a reference with a digest: a tag may have moved on the registry since the host pulled it
 * (a re-pushed `:latest`), and such a host pulls again, so it must take a registry turn like any other.
 */
function holdsNow(input: RolloutPeersInput, hostId: string, ref: string): boolean {
  if (!/@sha256:[0-9a-f]{64}$/.test(ref)) return false
  return heldImageId(input.fleet.get(hostId)?.localImages ?? null, ref) !== null
}

type ImageChoice =
  | { hostId: string; via: 'peers'; peers: PeerSourceRef[] }
  | { hostId: string; via: 'registry' }
  | { hostId: string; via: 'wait' }

/**
 * Uploads each source serves now: one per (fetcher, image) whose running command, of this rollout or
 * another, names it first (fallbacks cost a slot only when used). A fetcher that is not connected
 * reads nothing, so it holds no slot.
 */
function uploadsNow(input: RolloutPeersInput): Map<string, number> {
  const running = [
    ...input.hosts
      .filter((h) => h.state === 'running')
      .map((h) => ({ hostId: h.hostId, args: input.runningArgs.get(h.hostId) })),
    ...(input.elsewhere ?? []),
  ]
  const uploads = new Map<string, number>()
  for (const { hostId, args } of running) {
    if (!input.fleet.get(hostId)?.connected) continue
    const named = args?.peers
    if (!named || typeof named !== 'object') continue
    for (const list of Object.values(named as Record<string, unknown>)) {
      const first = Array.isArray(list) ? (list[0] as { host?: unknown } | undefined)?.host : undefined
      if (typeof first === 'string') uploads.set(first, (uploads.get(first) ?? 0) + 1)
    }
  }
  return uploads
}

function planImage(
  input: RolloutPeersInput,
  ref: string,
  starting: { hostId: string }[],
  uploads: Map<string, number>,
  claimed: Map<string, Map<string, number>>,
): ImageChoice[] {
  const { fleet, spec } = input
  const serving = (hostId: string) => {
    const f = fleet.get(hostId)
    return f?.connected && f.peers ? f.peers : null
  }
  const labels = (hostId: string) => fleet.get(hostId)?.labels ?? {}
  // distinct hosts a source failed: one fetcher with a broken engine or a full disk, reporting it
  // for several images, does not take a source away from the others
  const failedFor = new Map<string, Set<string>>()
  for (const h of input.hosts)
    for (const f of h.images.flatMap((i) => i.peerFailures ?? []))
      failedFor.set(f, (failedFor.get(f) ?? new Set()).add(h.hostId))
  const failures = new Map([...failedFor].map(([source, fetchers]) => [source, fetchers.size]))
  // a source whose archive named images on a fetcher sent what no gpuhost listener sends: out at once
  const breached = new Set(input.hosts.flatMap((h) => h.images.flatMap((i) => i.peerBreaches ?? [])))
  const sources: (PeerSourceHost & { ref: PeerSourceRef })[] = []
  const upcoming: { labels: Record<string, string> }[] = []
  const registryHosts: { labels: Record<string, string> }[] = []
  for (const h of input.hosts) {
    if (h.state === 'running') {
      const args = input.runningArgs.get(h.hostId)
      const images = Array.isArray(args?.images) ? (args.images as unknown[]) : []
      if (!images.includes(ref)) continue
      const named = (args?.peers as Record<string, unknown> | undefined)?.[ref]
      const fromPeers = Array.isArray(named) && named.length > 0
      const heldAtStart = Array.isArray(named) && named.length === 0
      if (!fromPeers && !heldAtStart) registryHosts.push({ labels: labels(h.hostId) })
      if (serving(h.hostId) && canServeAfter(ref, fromPeers ? 'peer' : 'registry'))
        upcoming.push({ labels: labels(h.hostId) })
    } else if (h.state === 'succeeded') {
      const outcome = h.images.find((i) => i.ref === ref)
      if (outcome?.status === 'pulled' && outcome.sourceKind !== 'peer')
        registryHosts.push({ labels: labels(h.hostId) })
      if (outcome?.status !== 'pulled' && outcome?.status !== 'present') continue
      const peers = serving(h.hostId)
      // A source that keeps failing (a full disk, a broken runtime, a network path that is down) would
      // cost every host it is named to an attempt: it is left out for the rest of the rollout.
      if (!peers || breached.has(h.hostId) || (failures.get(h.hostId) ?? 0) >= SOURCE_FAILURES_LIMIT) continue
      const imageId = heldImageId(fleet.get(h.hostId)!.localImages, ref)
      const fetchedFrom = outcome.status === 'pulled' && outcome.sourceKind === 'peer' ? 'peer' : 'registry'
      if (imageId) {
        const source = { hostId: h.hostId, peerUrl: peers.url, imageId, ...(peers.key ? { key: peers.key } : {}) }
        const { maxUploads } = peers
        sources.push({ hostId: h.hostId, labels: labels(h.hostId), maxUploads, serving: 0, ref: source })
      } else if (!canServeAfter(ref, fetchedFrom)) {
        continue
      } else if (h.finishedAt && input.nowMs - Date.parse(h.finishedAt) < FACTS_GRACE_SECONDS * 1000) {
        upcoming.push({ labels: labels(h.hostId) })
      }
    }
  }
  for (const s of sources) s.serving = uploads.get(s.hostId) ?? 0
  const byId = new Map(sources.map((s) => [s.hostId, s.ref]))
  const plan = planPeerSources({
    starting: starting.map((s) => ({ hostId: s.hostId, labels: labels(s.hostId), serves: !!serving(s.hostId) })),
    sources,
    registryHosts,
    upcomingSources: upcoming,
    registryParallel: spec.registryParallel ?? 1,
    affinityLabel: spec.peerAffinityLabel ?? null,
    claimed,
  })
  return plan.map((c) => (c.via === 'peers' ? { ...c, peers: c.peers.map((p) => byId.get(p)!) } : c))
}

/**
 * The id of the image the host reported under `ref`, when it is a plain sha256 id. The serving host
 * looks the image up by `ref`, and Docker resolves a reference with a digest by repository and digest
 * alone (a tag next to it is not looked at): such a reference is held only under a matching
 * repository digest, which a host gets from a registry pull and not from a peer's `docker save`.
 */
function heldImageId(images: ReportedImage[] | null, ref: string): string | null {
  const wanted = parsed(ref)
  if (!wanted) return null
  const repository = `${wanted.domain}/${wanted.repository}`
  const named = (i: ReportedImage) =>
    wanted.digest
      ? i.repoDigests.some((d) => {
          const held = parseRepoDigest(d)
          return held !== null && `${held.domain}/${held.repository}` === repository && held.digest === wanted.digest
        })
      : i.repoTags.some((t) => qualifiedRef(t) === `${repository}:${wanted.tag}`)
  for (const i of images ?? []) if (IMAGE_ID.test(i.id) && named(i)) return i.id
  return null
}

/**
 * Whether a host fetching `ref` from `kind` holds it afterwards under a name the peer export can
 * look it up by: a peer's archive carries no repository digest, so by a digest it serves only after
 * a registry or mirror pull.
 */
function canServeAfter(ref: string, kind: 'peer' | 'registry'): boolean {
  return kind === 'registry' || !parsed(ref)?.digest
}

function parsed(ref: string): ImageRef | null {
  try {
    return parseImageRef(ref)
  } catch {
    return null
  }
}

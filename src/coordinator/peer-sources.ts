// Where each host of a rollout fetches an image from, decided from the rollout's state alone. Pure:
// the driver asks this which of the hosts it may start get peers and which the registry.
//
// Rules: at most registryParallel hosts read the image from the registry over the whole rollout (per
// value of the affinity label when one is given: once per rack; a failed pull gives its turn back);
// every host that holds the image and serves
// peers is a source with maxUploads slots; a host starting now takes a free slot, preferring a
// source with its own affinity value, then the least busy; the other sources follow as fallbacks
// (they cost a slot only when used). Hosts a free source of their own group can serve are served
// first, so that a slot is not given across groups while a host of its own group waits. A host
// that finds neither a slot nor a registry turn waits for the next round: the tree grows by
// (1 + maxUploads) each round. A source's slots are counted over every image it serves.

export interface PeerSourceHost {
  hostId: string
  labels: Record<string, string>
  /** uploads this host serves at most at once (its peers.maxUploads) */
  maxUploads: number
  /** hosts of the rollout fetching from it now */
  serving: number
}

export interface PeerSourceInput {
  /** hosts the rollout would start now, in order */
  starting: { hostId: string; labels: Record<string, string>; serves: boolean }[]
  /** hosts that hold the image and serve peers */
  sources: PeerSourceHost[]
  /** hosts of the rollout sent to the registry for the image, running or done (a failed one gives its turn back) */
  registryHosts: { labels: Record<string, string> }[]
  /** serving hosts fetching the image now: sources soon, so a host may wait for them */
  upcomingSources: { labels: Record<string, string> }[]
  registryParallel: number
  /** e.g. `rack`: registry turns are counted within each value of this label and peers in it are preferred */
  affinityLabel: string | null
  /** fallbacks named after the chosen source */
  maxFallbacks?: number
  /**
   * slots a starting host already takes for other images of the same command, by host and source
   * (counted in `serving` too): when a source is full only because of the host itself, the host
   * takes a second slot of it rather than wait for itself
   */
  claimed?: Map<string, Map<string, number>>
}

export type PeerSourceChoice =
  | { hostId: string; via: 'peers'; peers: string[] }
  | { hostId: string; via: 'registry' }
  | { hostId: string; via: 'wait' }

export function planPeerSources(input: PeerSourceInput): PeerSourceChoice[] {
  const { affinityLabel } = input
  const group = (labels: Record<string, string>) => (affinityLabel === null ? '' : (labels[affinityLabel] ?? ''))
  const serving = new Map(input.sources.map((s) => [s.hostId, s.serving]))
  const turns = new Map<string, number>()
  for (const h of input.registryHosts) turns.set(group(h.labels), (turns.get(group(h.labels)) ?? 0) + 1)
  const groupsWithSources = new Set([...input.sources, ...input.upcomingSources].map((s) => group(s.labels)))
  const rank = (host: PeerSourceInput['starting'][number]) => {
    const mine = group(host.labels)
    return input.sources
      .filter((s) => s.hostId !== host.hostId)
      .sort(
        (a, b) =>
          Number(group(b.labels) === mine) - Number(group(a.labels) === mine) ||
          serving.get(a.hostId)! / a.maxUploads - serving.get(b.hostId)! / b.maxUploads ||
          a.hostId.localeCompare(b.hostId),
      )
  }
  const take = (host: PeerSourceInput['starting'][number], free: PeerSourceHost, ranked: PeerSourceHost[]) => {
    serving.set(free.hostId, serving.get(free.hostId)! + 1)
    const fallbacks = ranked.filter((s) => s !== free).slice(0, input.maxFallbacks ?? 2)
    if (host.serves) groupsWithSources.add(group(host.labels))
    return { hostId: host.hostId, via: 'peers' as const, peers: [free.hostId, ...fallbacks.map((s) => s.hostId)] }
  }
  const decided = new Map<string, PeerSourceChoice>()
  // First the hosts a free source of their own group can serve, so that a slot does not go across
  // groups while a host of the source's own group waits behind.
  for (const host of input.starting) {
    const ranked = rank(host)
    const free = ranked.find((s) => serving.get(s.hostId)! < s.maxUploads)
    if (free && group(free.labels) === group(host.labels)) decided.set(host.hostId, take(host, free, ranked))
  }
  for (const host of input.starting) {
    if (decided.has(host.hostId)) continue
    const mine = group(host.labels)
    const ranked = rank(host)
    const registryTurn = (turns.get(mine) ?? 0) < input.registryParallel
    const own = input.claimed?.get(host.hostId)
    const fullOnlyForItself = (s: PeerSourceHost) => serving.get(s.hostId)! - (own?.get(s.hostId) ?? 0) < s.maxUploads
    // Another free source or the registry turn first; a source full only with this host's own other
    // images after that (one upload may then wait on the source's limit) rather than wait for itself.
    const free =
      ranked.find((s) => serving.get(s.hostId)! < s.maxUploads) ??
      (registryTurn ? undefined : ranked.find(fullOnlyForItself))
    // A group's first fetch goes to the registry rather than across groups (once per rack); after
    // that a free peer anywhere beats waiting.
    const localFirst = registryTurn && !groupsWithSources.has(mine)
    if (free && (group(free.labels) === mine || !localFirst)) {
      decided.set(host.hostId, take(host, free, ranked))
    } else if (registryTurn || groupsWithSources.size === 0) {
      // no turn left but nothing will ever serve (no host serves peers): the registry, as without peers
      turns.set(mine, (turns.get(mine) ?? 0) + 1)
      decided.set(host.hostId, { hostId: host.hostId, via: 'registry' })
      if (host.serves) groupsWithSources.add(mine)
    } else {
      decided.set(host.hostId, { hostId: host.hostId, via: 'wait' })
    }
  }
  return input.starting.map((h) => decided.get(h.hostId)!)
}

/** rounds a rollout to N hosts takes at best: each round every holder serves maxUploads more */
export function peerRounds(hosts: number, registryParallel: number, maxUploads: number): number {
  let holders = 0
  let rounds = 0
  while (holders < hosts) {
    holders = holders === 0 ? Math.min(hosts, registryParallel) : Math.min(hosts, holders * (1 + maxUploads))
    rounds++
  }
  return rounds
}

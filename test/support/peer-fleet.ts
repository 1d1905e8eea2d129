// A fleet of agents, each on its own private dockerd serving peers, one registry, and one image
// spread over them either from the registry alone or in the rounds the peer-source planner lays
// out, with grants signed as the coordinator signs them; or, with a coordinator, linked to it so
// that its rollouts spread the image. Shared by the peer tests and bench.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeJsonAtomic } from '../../src/state/atomic.js'
import { hostToken } from '../../src/coordinator/identity.js'
import { grantPeer } from '../../src/coordinator/peer-grants.js'
import { planPeerSources } from '../../src/coordinator/peer-sources.js'
import { post, startAgent, testDir, type RunningAgent, type TestDir } from '../harness/agent.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { makeImage, pushImage } from '../harness/images.js'
import { freePort } from '../harness/ports.js'
import { startRegistry, type PrivateRegistry } from '../harness/registry.js'

const SECRET = 'fleet-agent-secret'

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

export interface PeerHost {
  id: string
  dockerd: PrivateDockerd
  agent: RunningAgent
  peerUrl: string
}

export interface PeerFleet {
  registry: PrivateRegistry
  hosts: PeerHost[]
  ref: string
  configDigest: string
  /** the image's blobs (config and layers), compressed */
  imageBytes: number
  /** bytes of blobs the registry served so far, from its access log: each GET counted at the blob's size */
  registryBytes(): number
  maxUploads: number
  /** the secret the hosts' link tokens derive from */
  secret: string
}

/** the coordinator the agents link to: its agents URL and the per-host tokens it accepts */
export interface FleetCoordinator {
  agentsUrl: string
  tokenFileFor(hostId: string): string
  /** the secret the coordinator derives per-host tokens from: grants made here are signed as it signs them */
  agentSecretFile: string
}

export async function startPeerFleet(
  t: Teardown,
  opts: {
    hosts: number
    mib: number
    maxUploads: number
    coordinator?: FleetCoordinator
    /** the labels of host i (0-based) */
    labels?: (i: number) => Record<string, string>
  },
): Promise<PeerFleet> {
  const registry = await startRegistry(t)
  const hosts = await Promise.all(
    Array.from({ length: opts.hosts }, async (_, i): Promise<PeerHost> => {
      const id = `gpu-${i + 1}`
      const dockerd = await startDockerd(t, { diskMiB: Math.max(400, opts.mib * 6) })
      const dir = testDir(t)
      const port = await freePort()
      const agent = await startAgent(
        t,
        {
          hostId: id,
          labels: opts.labels?.(i) ?? {},
          docker: { socket: dockerd.socket },
          gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
          prune: { highPercent: 100, schedule: null },
          prewarm: { schedule: null, retries: 0 },
          coordinator: opts.coordinator
            ? { url: opts.coordinator.agentsUrl, tokenFile: opts.coordinator.tokenFileFor(id), reconnectMaxSeconds: 1 }
            : { tokenFile: dir.file('link-token', hostToken(SECRET, id) + '\n') },
          peers: { serve: true, listen: `127.0.0.1:${port}`, maxUploads: opts.maxUploads, allowLoopback: true },
        },
        { waitReady: true },
      )
      return { id, dockerd, agent, peerUrl: `http://127.0.0.1:${port}` }
    }),
  )
  // Built and pushed on a dockerd of its own: a fleet host that held the image for a moment could still
  // be reported holding it when a rollout starts, and would be taken as having it already.
  const builder = await startDockerd(t, { diskMiB: Math.max(400, opts.mib * 3) })
  makeImage(builder, { ref: 'fleet/model:1', sizeBytes: opts.mib * 1024 * 1024 })
  const ref = pushImage(builder, 'fleet/model:1', registry.host)
  const manifest = (await (
    await fetch(`${registry.url}/v2/fleet/model/manifests/1`, {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    })
  ).json()) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] }
  const sizes = new Map([manifest.config, ...manifest.layers].map((b) => [b.digest, b.size]))
  return {
    registry,
    hosts,
    ref,
    configDigest: manifest.config.digest,
    imageBytes: [...sizes.values()].reduce((a, b) => a + b, 0),
    maxUploads: opts.maxUploads,
    secret: opts.coordinator ? readFileSync(opts.coordinator.agentSecretFile, 'utf8').trim() : SECRET,
    registryBytes: () => {
      let total = 0
      for (const line of registry.log().split('\n')) {
        const m = /blobs\/(sha256:[0-9a-f]{64})/.exec(line)
        if (m && /method=GET/.test(line) && /response\.status=200/.test(line)) total += sizes.get(m[1]) ?? 0
      }
      return total
    },
  }
}

/** one host's prewarm of the fleet's image, held for `rollout`; "registry", "mirror" or "peer gpu-N" */
async function prewarm(fleet: PeerFleet, host: PeerHost, rollout: string, peers?: unknown[]): Promise<string> {
  const res = await post(`${host.agent.url}/v1/prewarm`, host.agent.token, {
    images: [fleet.ref],
    hold: true,
    rollout,
    ...(peers ? { peers: { [fleet.ref]: peers } } : {}),
  })
  const r = res.body?.results?.[0]
  if (res.status !== 200 || r?.status !== 'pulled') throw new Error(`${host.id}: ${JSON.stringify(res.body)}`)
  return r.sourceKind === 'peer' ? `peer ${String(r.source).replace(/^peer:/, '')}` : r.sourceKind
}

/** every host pulls from the registry at once */
export async function spreadFromRegistry(fleet: PeerFleet, rollout: string): Promise<string[]> {
  return Promise.all(fleet.hosts.map(async (h) => `${h.id} ← ${await prewarm(fleet, h, rollout)}`))
}

/** rounds as the planner lays them out, each a list of "host ← source" */
export async function spreadWithPeers(fleet: PeerFleet, rollout: string): Promise<string[][]> {
  const done: string[] = []
  const rounds: string[][] = []
  const registryHosts: { labels: Record<string, string> }[] = []
  const policy = { mode: 'per-host' as const, secret: fleet.secret, sharedToken: null }
  const byId = (id: string) => fleet.hosts.find((h) => h.id === id)!
  while (done.length < fleet.hosts.length) {
    const plan = planPeerSources({
      starting: fleet.hosts
        .filter((h) => !done.includes(h.id))
        .map((h) => ({ hostId: h.id, labels: {}, serves: true })),
      sources: done.map((hostId) => ({ hostId, labels: {}, maxUploads: fleet.maxUploads, serving: 0 })),
      registryHosts,
      upcomingSources: [],
      registryParallel: 1,
      affinityLabel: null,
    })
    const now = Math.floor(Date.now() / 1000)
    const grant = (server: string, fetcher: string) =>
      grantPeer(
        policy,
        { server, fetcher, ref: fleet.ref, configDigest: fleet.configDigest, peerUrl: byId(server).peerUrl },
        now,
        3600,
      )
    const go = plan.filter((c) => c.via !== 'wait')
    const round = await Promise.all(
      go.map(async (c) => {
        if (c.via === 'registry') registryHosts.push({ labels: {} })
        const peers = c.via === 'peers' ? c.peers.map((p) => grant(p, c.hostId)) : undefined
        return `${c.hostId} ← ${await prewarm(fleet, byId(c.hostId), rollout, peers)}`
      }),
    )
    done.push(...go.map((c) => c.hostId))
    rounds.push(round)
  }
  return rounds
}

/** the image id each host holds under the fleet's reference */
export function imageIds(fleet: PeerFleet): string[] {
  return fleet.hosts.map((h) => h.dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', fleet.ref]).trim())
}

/**
 * One serving host, gpu-a, on `dockerd`: `ref` held in its wanted set for rollout r1 (what a
 * rollout's prewarm leaves), its link token from the fleet secret, its peer listener on a free port.
 */
export async function startServingHost(
  t: Parameters<typeof startAgent>[0],
  dir: TestDir,
  dockerd: PrivateDockerd,
  ref: string,
  peers: Record<string, unknown> = {},
): Promise<{ agent: RunningAgent; linkToken: string; port: number }> {
  const state = join(dir.path, 'server-state')
  writeJsonAtomic(join(state, 'prewarm-wanted.json'), {
    version: 1,
    held: [{ ref, source: 'rollout:r1', since: new Date().toISOString() }],
  })
  const linkToken = hostToken('fleet-secret', 'gpu-a')
  const port = await freePort()
  const agent = await startAgent(
    t,
    {
      hostId: 'gpu-a',
      stateDir: state,
      docker: { socket: dockerd.socket },
      gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
      prune: { highPercent: 100, schedule: null },
      prewarm: { schedule: null },
      coordinator: { tokenFile: dir.file('link-token', linkToken + '\n') },
      peers: { serve: true, listen: `127.0.0.1:${port}`, allowLoopback: true, ...peers },
    },
    { waitReady: true },
  )
  return { agent, linkToken, port }
}

// One image to four hosts, each an agent on its own private dockerd, from one local registry:
// (a) every host pulls from the registry; (b) hosts fetch from each other, in the rounds the
// peer-source planner (src/coordinator/peer-sources.ts) lays out, with grants signed as the
// coordinator signs them. Prints time and the bytes the registry served, side by side. On loopback
// the time is not the point; the registry bytes are.
//
//   npm run -s build && npx tsx bench/peer-rollout.ts [--mib M] [--hosts N] [--max-uploads U]
//
// Needs root, dockerd, docker and docker-registry (see .ci/run).
import { parseArgs } from 'node:util'
import { hostToken } from '../src/coordinator/identity.js'
import { grantPeer } from '../src/coordinator/peer-grants.js'
import { planPeerSources } from '../src/coordinator/peer-sources.js'
import { post, startAgent, testDir, type RunningAgent } from '../test/harness/agent.js'
import { startDockerd, type PrivateDockerd } from '../test/harness/dockerd.js'
import { makeImage, pushImage } from '../test/harness/images.js'
import { startRegistry, type PrivateRegistry } from '../test/harness/registry.js'
import { freePort } from './support.js'

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '64' },
    hosts: { type: 'string', default: '4' },
    'max-uploads': { type: 'string', default: '2' },
  },
})
const mib = Number(values.mib)
const hostCount = Number(values.hosts)
const maxUploads = Number(values['max-uploads'])
const SECRET = 'bench-agent-secret'

const teardowns: (() => void | Promise<void>)[] = []
const t = { teardown: (fn: () => void | Promise<void>) => void teardowns.push(fn) }

interface Host {
  id: string
  dockerd: PrivateDockerd
  agent: RunningAgent
  peerUrl: string
}

/** bytes of blobs the registry served, from its access log: each GET of a blob counted at the blob's size */
function registryBytes(registry: PrivateRegistry, sizes: Map<string, number>): number {
  let total = 0
  for (const line of registry.log().split('\n')) {
    const m = /blobs\/(sha256:[0-9a-f]{64})/.exec(line)
    if (m && /method=GET/.test(line) && /response\.status=200/.test(line)) total += sizes.get(m[1]) ?? 0
  }
  return total
}

async function prewarm(host: Host, ref: string, rollout: string, peers?: unknown[]): Promise<string> {
  const res = await post(`${host.agent.url}/v1/prewarm`, host.agent.token, {
    images: [ref],
    hold: true,
    rollout,
    ...(peers ? { peers: { [ref]: peers } } : {}),
  })
  const r = res.body?.results?.[0]
  if (res.status !== 200 || r?.status !== 'pulled') throw new Error(`${host.id}: ${JSON.stringify(res.body)}`)
  return `${r.sourceKind}${r.sourceKind === 'peer' ? ` ${r.source}` : ''}`
}

async function main(): Promise<void> {
  const registry = await startRegistry(t)
  const hosts: Host[] = []
  for (let i = 0; i < hostCount; i++) {
    const id = `gpu-${i + 1}`
    const dockerd = await startDockerd(t, { diskMiB: Math.max(600, mib * 6) })
    const dir = testDir(t)
    const port = await freePort()
    const agent = await startAgent(
      t,
      {
        hostId: id,
        docker: { socket: dockerd.socket },
        gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
        prune: { highPercent: 100, schedule: null },
        prewarm: { schedule: null, retries: 0 },
        coordinator: { tokenFile: dir.file('link-token', hostToken(SECRET, id) + '\n') },
        peers: { serve: true, listen: `127.0.0.1:${port}`, maxUploads },
      },
      { waitReady: true },
    )
    hosts.push({ id, dockerd, agent, peerUrl: `http://127.0.0.1:${port}` })
  }
  makeImage(hosts[0].dockerd, { ref: 'bench/model:1', sizeBytes: mib * 1024 * 1024 })
  const ref = pushImage(hosts[0].dockerd, 'bench/model:1', registry.host)
  hosts[0].dockerd.docker(['rmi', 'bench/model:1'])
  const manifest = (await (
    await fetch(`${registry.url}/v2/bench/model/manifests/1`, {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    })
  ).json()) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] }
  const sizes = new Map([manifest.config, ...manifest.layers].map((b) => [b.digest, b.size]))
  const imageBytes = [...sizes.values()].reduce((a, b) => a + b, 0)
  const removeEverywhere = () => {
    for (const h of hosts) h.dockerd.docker(['rmi', ref])
  }

  // (a) registry only: every host at once, as a rollout with maxParallelHosts = N
  let before = registryBytes(registry, sizes)
  let started = performance.now()
  await Promise.all(hosts.map((h) => prewarm(h, ref, 'registry-only')))
  const without = { seconds: (performance.now() - started) / 1000, bytes: registryBytes(registry, sizes) - before }
  removeEverywhere()

  // (b) with peers: rounds as the planner lays them out
  before = registryBytes(registry, sizes)
  started = performance.now()
  const done = new Set<string>()
  const policy = { mode: 'per-host' as const, secret: SECRET, sharedToken: null }
  const rounds: string[] = []
  const registryHosts: { labels: Record<string, string> }[] = []
  while (done.size < hosts.length) {
    const starting = hosts.filter((h) => !done.has(h.id)).map((h) => ({ hostId: h.id, labels: {}, serves: true }))
    const sources = [...done].map((hostId) => ({ hostId, labels: {}, maxUploads, serving: 0 }))
    const plan = planPeerSources({
      starting,
      sources,
      registryHosts,
      upcomingSources: [],
      registryParallel: 1,
      affinityLabel: null,
    })
    const now = Math.floor(Date.now() / 1000)
    const round = await Promise.all(
      plan
        .filter((c) => c.via !== 'wait')
        .map(async (c) => {
          const host = hosts.find((h) => h.id === c.hostId)!
          const peers =
            c.via === 'peers'
              ? c.peers.map((p) =>
                  grantPeer(
                    policy,
                    {
                      server: p,
                      fetcher: c.hostId,
                      ref,
                      configDigest: manifest.config.digest,
                      peerUrl: hosts.find((h) => h.id === p)!.peerUrl,
                    },
                    now,
                  ),
                )
              : undefined
          if (c.via === 'registry') registryHosts.push({ labels: {} })
          return `${c.hostId} ← ${await prewarm(host, ref, 'with-peers', peers)}`
        }),
    )
    for (const c of plan) if (c.via !== 'wait') done.add(c.hostId)
    rounds.push(round.join(', '))
  }
  const withPeers = { seconds: (performance.now() - started) / 1000, bytes: registryBytes(registry, sizes) - before }
  const ids = new Set(hosts.map((h) => h.dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', ref]).trim()))

  const m = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`
  console.log(
    `image ${m(imageBytes)} (compressed), ${hosts.length} hosts, maxUploads ${maxUploads}, registryParallel 1`,
  )
  console.log(`${''.padEnd(16)}${'time'.padStart(10)}${'registry bytes'.padStart(18)}${'× image'.padStart(10)}`)
  for (const [name, r] of [
    ['registry only', without],
    ['with peers', withPeers],
  ] as const)
    console.log(
      `${name.padEnd(16)}${`${r.seconds.toFixed(2)} s`.padStart(10)}${m(r.bytes).padStart(18)}` +
        `${(r.bytes / imageBytes).toFixed(2).padStart(10)}`,
    )
  rounds.forEach((r, i) => console.log(`round ${i + 1}: ${r}`))
  console.log(`image ids on the hosts: ${[...ids].join(', ')} (registry config digest ${manifest.config.digest})`)
}

main()
  .catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
  .finally(async () => {
    for (const fn of teardowns.reverse()) await fn()
  })

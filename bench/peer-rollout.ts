// One image to four hosts, each an agent on its own private dockerd, from one local registry:
// (a) every host pulls from the registry; (b) hosts fetch from each other, in the rounds the
// peer-source planner (src/coordinator/peer-sources.ts) lays out, with grants signed as the
// coordinator signs them; then the same two through the coordinator: (c) a rollout with
// `peers: false` and (d) a rollout with peers, planned by its rollout driver from the hosts' hellos
// and reported images. Prints time and the bytes the registry served, side by side. On loopback
// the time is not the point; the registry bytes are. The driver's rounds also wait for each
// source to report the image (a snapshot, at most one per 5 s per host), which (d)'s time includes.
//
//   npm run -s build && npx tsx bench/peer-rollout.ts [--mib M] [--hosts N] [--max-uploads U]
//
// Needs root, dockerd, docker and docker-registry (see .ci/run).
import { parseArgs } from 'node:util'
import { startCoordinator, waitRollout, type RunningCoordinator } from '../test/harness/coordinator.js'
import { waitFor } from '../test/harness/ports.js'
import {
  imageIds,
  spreadFromRegistry,
  spreadWithPeers,
  startPeerFleet,
  type PeerFleet,
} from '../test/support/peer-fleet.js'

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '64' },
    hosts: { type: 'string', default: '4' },
    'max-uploads': { type: 'string', default: '2' },
  },
})

const teardowns: (() => void | Promise<void>)[] = []
const t = { teardown: (fn: () => void | Promise<void>) => void teardowns.push(fn) }

/** a coordinator rollout of the fleet's image to every host; the hosts and where each read it */
async function rollout(coord: RunningCoordinator, fleet: PeerFleet, peers: boolean): Promise<string[]> {
  const body = { images: [fleet.ref], maxParallelHosts: fleet.hosts.length, peers }
  const started = await coord.api('/v1/rollouts', { body })
  if (started.status !== 201) throw new Error(`rollout refused: ${JSON.stringify(started.body)}`)
  const r = await waitRollout(coord, started.body.id, { timeoutMs: 600_000 })
  if (r.state !== 'succeeded') throw new Error(`rollout ${r.state}: ${JSON.stringify(r.hosts)}`)
  return r.hosts.map((h: any) => {
    const kinds = Object.entries(h.bytesBySource as Record<string, number>).filter(([, n]) => n > 0)
    return `${h.hostId} ← ${kinds.map(([k]) => k).join('+') || 'present'}`
  })
}

async function main(): Promise<void> {
  const maxUploads = Number(values['max-uploads'])
  const coord = await startCoordinator(t)
  const fleet = await startPeerFleet(t, {
    hosts: Number(values.hosts),
    mib: Number(values.mib),
    maxUploads,
    coordinator: coord,
  })
  await waitFor(
    'every agent linked, advertising its peer listener',
    async () =>
      (await coord.api('/v1/hosts')).body.hosts.filter((h: any) => h.connected && h.peers).length ===
      fleet.hosts.length,
    60_000,
    200,
  )
  const measure = async (run: () => Promise<unknown>) => {
    const bytes = fleet.registryBytes()
    const started = performance.now()
    await run()
    const seconds = (performance.now() - started) / 1000
    const verified = imageIds(fleet).every((id) => id === fleet.configDigest)
    const took = { seconds, bytes: fleet.registryBytes() - bytes, verified }
    // The next run starts from hosts without the image (never forced: nothing runs it here).
    for (const h of fleet.hosts) h.dockerd.docker(['rmi', fleet.ref])
    return took
  }
  const rows: [string, { seconds: number; bytes: number; verified: boolean }][] = []
  rows.push(['registry only', await measure(() => spreadFromRegistry(fleet, 'registry-only'))])
  let rounds: string[][] = []
  rows.push(['with peers', await measure(async () => (rounds = await spreadWithPeers(fleet, 'with-peers')))])
  rows.push(['rollout, no peers', await measure(() => rollout(coord, fleet, false))])
  let driven: string[] = []
  rows.push(['rollout, peers', await measure(async () => (driven = await rollout(coord, fleet, true)))])

  const m = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`
  console.log(`image ${m(fleet.imageBytes)} compressed, ${fleet.hosts.length} hosts, maxUploads ${maxUploads}`)
  const head = `${''.padEnd(20)}${'time'.padStart(10)}${'registry bytes'.padStart(18)}${'× image'.padStart(10)}`
  console.log(`${head}  every id = config digest`)
  for (const [name, r] of rows)
    console.log(
      `${name.padEnd(20)}${`${r.seconds.toFixed(2)} s`.padStart(10)}${m(r.bytes).padStart(18)}` +
        `${(r.bytes / fleet.imageBytes).toFixed(2).padStart(10)}  ${r.verified ? 'yes' : 'NO'}`,
    )
  rounds.forEach((r, i) => console.log(`round ${i + 1}: ${r.join(', ')}`))
  console.log(`rollout with peers: ${driven.join(', ')}`)
  console.log(`registry config digest ${fleet.configDigest}`)
}

main()
  .catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
  .finally(async () => {
    for (const fn of teardowns.reverse()) await fn()
  })

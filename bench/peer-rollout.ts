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
import { imageIds, spreadFromRegistry, spreadWithPeers, startPeerFleet } from '../test/support/peer-fleet.js'

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '64' },
    hosts: { type: 'string', default: '4' },
    'max-uploads': { type: 'string', default: '2' },
  },
})

const teardowns: (() => void | Promise<void>)[] = []
const t = { teardown: (fn: () => void | Promise<void>) => void teardowns.push(fn) }

async function main(): Promise<void> {
  const maxUploads = Number(values['max-uploads'])
  const fleet = await startPeerFleet(t, { hosts: Number(values.hosts), mib: Number(values.mib), maxUploads })
  const measure = async (run: () => Promise<unknown>) => {
    const bytes = fleet.registryBytes()
    const started = performance.now()
    await run()
    return { seconds: (performance.now() - started) / 1000, bytes: fleet.registryBytes() - bytes }
  }
  const without = await measure(() => spreadFromRegistry(fleet, 'registry-only'))
  for (const h of fleet.hosts) h.dockerd.docker(['rmi', fleet.ref])
  let rounds: string[][] = []
  const withPeers = await measure(async () => (rounds = await spreadWithPeers(fleet, 'with-peers')))

  const m = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`
  console.log(`image ${m(fleet.imageBytes)} compressed, ${fleet.hosts.length} hosts, maxUploads ${maxUploads}`)
  console.log(`${''.padEnd(16)}${'time'.padStart(10)}${'registry bytes'.padStart(18)}${'× image'.padStart(10)}`)
  for (const [name, r] of [
    ['registry only', without],
    ['with peers', withPeers],
  ] as const)
    console.log(
      `${name.padEnd(16)}${`${r.seconds.toFixed(2)} s`.padStart(10)}${m(r.bytes).padStart(18)}` +
        `${(r.bytes / fleet.imageBytes).toFixed(2).padStart(10)}`,
    )
  rounds.forEach((r, i) => console.log(`round ${i + 1}: ${r.join(', ')}`))
  console.log(`image ids: ${[...new Set(imageIds(fleet))].join(', ')}; registry config digest ${fleet.configDigest}`)
}

main()
  .catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
  .finally(async () => {
    for (const fn of teardowns.reverse()) await fn()
  })

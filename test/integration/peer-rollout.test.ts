// One image to four hosts, each an agent with its own private dockerd and loop disk: the first
// reads it from the registry, the others from peers in the rounds the peer-source planner lays
// out. The registry serves the image's bytes about once, and every host ends with the registry's
// config digest as the image id.
import t from 'tap'
import { requireServices } from '../harness/services.js'
import { imageIds, spreadWithPeers, startPeerFleet } from '../support/peer-fleet.js'

if (requireServices(t, ['dockerd', 'docker', 'mkfs', 'docker-registry'])) {
  t.test('four hosts read a 32 MiB image from the registry about once', async (t) => {
    const fleet = await startPeerFleet(t, { hosts: 4, mib: 32, maxUploads: 2 })
    const rounds = await spreadWithPeers(fleet, 'r1')
    t.same(rounds[0], ['gpu-1 ← registry'], 'the first host reads the registry')
    t.equal(rounds.flat().filter((r) => r.endsWith('← registry')).length, 1, 'the others read peers')
    t.equal(rounds.length, 3, 'rounds of 1, 2 (maxUploads), then the last')
    const served = fleet.registryBytes()
    t.ok(served <= 1.2 * fleet.imageBytes, `the registry served ${served} bytes of a ${fleet.imageBytes}-byte image`)
    t.same(imageIds(fleet), Array(4).fill(fleet.configDigest), "every host holds the registry's config digest")
    const metrics = await (await fetch(`${fleet.hosts[3].agent.url}/metrics`)).text()
    t.match(metrics, /gpuhost_prewarm_fetched_bytes_total\{source_kind="peer"\} [1-9]/, 'counted as peer bytes')
    // every byte a host read from a peer, some peer counted as served
    const series = async (host: (typeof fleet.hosts)[number], re: RegExp) =>
      Number(re.exec(await (await fetch(`${host.agent.url}/metrics`)).text())?.[1] ?? NaN)
    let fetched = 0
    let uploaded = 0
    for (const h of fleet.hosts) {
      fetched += await series(h, /gpuhost_prewarm_fetched_bytes_total\{source_kind="peer"\} (\d+)/)
      uploaded += await series(h, /gpuhost_peer_served_bytes_total (\d+)/)
    }
    t.ok(fetched > 3 * 32 * 1024 * 1024, `three hosts read ${fetched} bytes from peers`)
    t.equal(uploaded, fetched, 'the serving hosts count the same bytes as served')
  })
}

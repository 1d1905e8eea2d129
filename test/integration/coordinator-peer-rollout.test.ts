// A rollout with peers through the real coordinator and its rollout driver: the built coordinator,
// four built agents each with its own private dockerd on its own loop disk, serving peers and
// advertising their listener in the hello, one registry whose access log counts the bytes it
// served. `POST /v1/rollouts` of one 200 MiB image: the driver sends the first host to the registry
// and names peers to the others; the registry serves the image's bytes about once, every host ends
// with the registry's config digest as the image id, and the rollout's status and the coordinator's
// metrics count the bytes by source. Then racks: with `peerAffinityLabel: rack` the registry is read
// once per rack and every other host reads a peer.
import t from 'tap'
import { requireServices } from '../harness/services.js'
import { runCli } from '../harness/agent.js'
import { startCoordinator, waitRollout } from '../harness/coordinator.js'
import { waitFor } from '../harness/ports.js'
import { imageIds, startPeerFleet } from '../support/peer-fleet.js'

const MIB = 200

if (requireServices(t, ['dockerd', 'docker', 'mkfs', 'docker-registry'])) {
  t.test(`a rollout of a ${MIB} MiB image to four hosts reads it from the registry about once`, async (t) => {
    const coord = await startCoordinator(t)
    const fleet = await startPeerFleet(t, { hosts: 4, mib: MIB, maxUploads: 2, coordinator: coord })
    const hosts = async () => (await coord.api('/v1/hosts')).body.hosts as any[]
    await waitFor(
      'four agents connected, each advertising its peer listener',
      async () => (await hosts()).filter((h) => h.connected && h.peers).length === 4,
      60_000,
      200,
    )
    for (const h of await hosts()) {
      const mine = fleet.hosts.find((f) => f.id === h.hostId)!
      const advertised = { url: mine.peerUrl, maxUploads: 2, key: 'host' }
      t.same(h.peers, advertised, `${h.hostId} advertised its listener and maxUploads; grants signed with its token`)
    }

    for (const [bad, why] of [
      [{ registryParallel: 0 }, /registryParallel/],
      [{ peerAffinityLabel: 'not a label' }, /peerAffinityLabel.*label key/],
      [{ peers: 'yes' }, /peers/],
    ] as const) {
      const res = await coord.api('/v1/rollouts', { body: { images: [fleet.ref], maxParallelHosts: 4, ...bad } })
      t.equal(res.status, 400, `${JSON.stringify(bad)} is refused`)
      t.match(res.body.error, why)
    }

    const started = await coord.api('/v1/rollouts', { body: { images: [fleet.ref], maxParallelHosts: 4 } })
    t.equal(started.status, 201, JSON.stringify(started.body))
    const id = started.body.id as string
    const r = await waitRollout(coord, id, { timeoutMs: 300_000, everyMs: 500 })
    t.equal(r.state, 'succeeded', JSON.stringify(r.hosts.map((h: any) => [h.hostId, h.state, h.reason])))
    t.same(r.spec.registryParallel, 1, 'one host at a time reads the registry (the default)')

    const served = fleet.registryBytes()
    t.ok(served > 0, 'the registry served the image once')
    t.ok(served <= 1.2 * fleet.imageBytes, `the registry served ${served} bytes of a ${fleet.imageBytes}-byte image`)
    t.same(imageIds(fleet), Array(4).fill(fleet.configDigest), "every host holds the registry's config digest")

    const fromRegistry = r.hosts.filter((h: any) => h.bytesBySource.registry > 0)
    const fromPeers = r.hosts.filter((h: any) => h.bytesBySource.peer > 0)
    t.equal(fromRegistry.length, 1, 'one host read the registry')
    t.equal(fromPeers.length, 3, 'three hosts read peers')
    const first = fromRegistry[0]
    for (const h of fromPeers)
      t.ok(h.startedAt >= first.finishedAt, `${h.hostId} was started once ${first.hostId} held the image`)
    t.ok(r.totals.bytesBySource.peer > 0, 'the totals show peer bytes')
    t.equal(
      r.totals.bytesBySource.registry + r.totals.bytesBySource.peer,
      r.totals.bytesPulled,
      'every byte pulled is counted under its source',
    )

    // The driver named peers in the prewarm commands of the hosts that read peers, and no others.
    const commands = (await coord.api('/v1/commands?action=prewarm&limit=100')).body.commands as any[]
    for (const h of r.hosts) {
      const args = commands.find((c) => c.commandId === h.commandId)?.args
      const named = args?.peers?.[fleet.ref] as any[] | undefined
      if (h.bytesBySource.peer > 0) {
        t.ok(named?.length, `${h.hostId}'s command named peers`)
        const urls = named!.map((p) => p.url as string)
        t.ok(
          urls.every((u) => u.endsWith(`/v1/images/${fleet.configDigest}/export`)),
          `${h.hostId}'s peers are named by the image id`,
        )
      } else t.notOk(named, `${h.hostId}'s command named no peers`)
    }
    // Each host's own agent says where its bytes came from.
    for (const h of fleet.hosts) {
      const metrics = await (await fetch(`${h.agent.url}/metrics`)).text()
      const peer = /gpuhost_prewarm_fetched_bytes_total\{source_kind="peer"\} (\d+)/.exec(metrics)?.[1]
      const expected = fromPeers.some((p: any) => p.hostId === h.id)
      t.equal(Number(peer ?? 0) > 0, expected, `${h.id}'s agent counted ${peer ?? 0} peer bytes`)
    }

    const text = await (await fetch(`${coord.url}/metrics`)).text()
    const counted = (kind: string) =>
      Number(
        new RegExp(`gpuhost_coordinator_rollout_fetched_bytes_total\\{source_kind="${kind}"\\} (\\S+)`).exec(text)?.[1],
      )
    t.equal(counted('peer'), r.totals.bytesBySource.peer, "the coordinator's counter of peer bytes")
    t.equal(counted('registry'), r.totals.bytesBySource.registry, "the coordinator's counter of registry bytes")
    t.equal(counted('mirror'), 0, 'no mirror here')

    const status = runCli(['rollout', 'status', id, '--url', coord.url, '--token-file', coord.adminTokenFile])
    t.equal(status.code, 0, `gpuhost rollout status exits 0 ${status.stderr}`)
    t.match(
      status.stdout,
      /MiB pulled \(registry [\d.]+ MiB, peer [\d.]+ MiB\)/,
      'gpuhost rollout status shows bytes by source',
    )
  })
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs', 'docker-registry'])) {
  t.test('with peerAffinityLabel rack: the registry once per rack, peers after', async (t) => {
    const coord = await startCoordinator(t)
    const rack = (i: number) => ({ rack: i < 2 ? 'a' : 'b' })
    const fleet = await startPeerFleet(t, { hosts: 4, mib: 16, maxUploads: 2, coordinator: coord, labels: rack })
    await waitFor(
      'four agents connected, each advertising its peer listener',
      async () => (await coord.api('/v1/hosts')).body.hosts.filter((h: any) => h.connected && h.peers).length === 4,
      60_000,
      200,
    )
    const body = { images: [fleet.ref], maxParallelHosts: 4, peerAffinityLabel: 'rack' }
    const started = await coord.api('/v1/rollouts', { body })
    t.equal(started.status, 201, JSON.stringify(started.body))
    const r = await waitRollout(coord, started.body.id, { timeoutMs: 300_000, everyMs: 500 })
    t.equal(r.state, 'succeeded', JSON.stringify(r.hosts.map((h: any) => [h.hostId, h.state, h.reason])))
    const served = fleet.registryBytes()
    t.ok(
      served >= 2 * fleet.imageBytes && served <= 2.4 * fleet.imageBytes,
      `the registry served ${served} bytes of a ${fleet.imageBytes}-byte image: about twice, once per rack`,
    )
    t.same(imageIds(fleet), Array(4).fill(fleet.configDigest), "every host holds the registry's config digest")
    const commands = (await coord.api('/v1/commands?action=prewarm&limit=100')).body.commands as any[]
    const rackOf = (hostId: string) => rack(fleet.hosts.findIndex((h) => h.id === hostId)).rack
    const via = r.hosts.map((h: any) => {
      const named = commands.find((c) => c.commandId === h.commandId)?.args?.peers?.[fleet.ref] as any[] | undefined
      return named ? `${rackOf(h.hostId)} ← peer` : `${rackOf(h.hostId)} ← registry`
    })
    // Which peer the second host of a rack reads depends on which rack's first host finished first:
    // a free peer of the other rack is taken rather than waiting (peer-sources.ts).
    t.same(via.sort(), ['a ← peer', 'a ← registry', 'b ← peer', 'b ← registry'], 'one registry read per rack')
  })
}

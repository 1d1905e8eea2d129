// An agent serving a rollout's image to a peer: the built agent on its own private dockerd with
// peers.serve on, a second private dockerd that loads what it sends through gpuhost's runtime.
// Without a peer token: 401; for an image no rollout holds: 403; beyond maxUploads: 503; the
// archive loads as the very image id the server holds, with no name the server put on it. The
// agent's /metrics counts each refusal by reason, the upload in flight and the bytes served.
import t from 'tap'
import { Readable } from 'node:stream'
import { join } from 'node:path'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { makeImage } from '../harness/images.js'
import { testDir } from '../harness/agent.js'
import { waitFor } from '../harness/ports.js'
import { hostToken } from '../../src/coordinator/identity.js'
import { peerToken } from '../../src/peers/token.js'
import { startServingHost } from '../support/peer-fleet.js'
import { DockerRuntime } from '../../src/runtime/docker.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('a serving agent exports a held image to a fleet peer and nothing else', async (t) => {
    const [server, receiver] = await Promise.all([startDockerd(t, { diskMiB: 400 }), startDockerd(t, { diskMiB: 400 })])
    const heldId = makeImage(server, { ref: 'fleet/model:1', sizeBytes: 24 * 1024 * 1024 })
    const otherId = makeImage(server, { ref: 'private/notes:1', sizeBytes: 1024 })
    const dir = testDir(t)
    const { agent, linkToken, port } = await startServingHost(t, dir, server, 'fleet/model:1', { maxUploads: 1 })
    const base = `http://127.0.0.1:${port}`
    const exportUrl = (id: string) => `${base}/v1/images/${id}/export`
    const grant = (ref: string, over: { server?: string; expiresAt?: number; key?: string } = {}) =>
      peerToken(over.key ?? linkToken, {
        server: over.server ?? 'gpu-a',
        fetcher: 'gpu-b',
        ref,
        expiresAt: over.expiresAt ?? Math.floor(Date.now() / 1000) + 600,
      })
    const get = (id: string, token?: string) =>
      fetch(exportUrl(id), token ? { headers: { authorization: `Bearer ${token}` } } : {})
    const metric = async (series: string) => {
      const text = await (await fetch(`${agent.url}/metrics`)).text()
      const line = text.split('\n').find((l) => l.startsWith(`${series} `))
      return line === undefined ? NaN : Number(line.slice(series.length + 1))
    }
    const status = async (id: string, token?: string) => {
      const res = await get(id, token)
      await res.arrayBuffer()
      return res.status
    }

    await waitFor('the peer listener', async () => (await fetch(base).catch(() => null)) !== null, 30_000)
    t.equal(await status(heldId), 401, 'no credential')
    t.equal(await status(heldId, linkToken), 401, 'the link token itself is not a peer token')
    t.equal(await status(heldId, grant('fleet/model:1', { key: hostToken('fleet-secret', 'gpu-c') })), 401, 'wrong key')
    t.equal(await status(heldId, grant('fleet/model:1', { server: 'gpu-c' })), 401, 'issued for another host')
    t.equal(await status(heldId, grant('fleet/model:1', { expiresAt: 1 })), 401, 'expired')
    t.equal(await status(otherId, grant('private/notes:1')), 403, 'an image no rollout holds')
    t.equal(await status(otherId, grant('fleet/model:1')), 404, 'the granted name is not on that id')

    // One upload at a time: the first is held open (its body unread), the second is turned away.
    const first = await get(heldId, grant('fleet/model:1'))
    t.equal(first.status, 200)
    t.equal(first.headers.get('content-type'), 'application/x-tar')
    t.equal(await status(heldId, grant('fleet/model:1')), 503, 'beyond maxUploads')
    t.equal(await metric('gpuhost_peer_uploads_in_flight'), 1, 'the held-open upload is in flight')
    t.equal(await metric('gpuhost_peer_requests_refused_total{reason="unauthorized"}'), 5)
    t.equal(await metric('gpuhost_peer_requests_refused_total{reason="forbidden"}'), 1)
    // the granted name on another id, and the listener probe's GET / (no such route)
    t.equal(await metric('gpuhost_peer_requests_refused_total{reason="not_found"}'), 2)
    t.equal(await metric('gpuhost_peer_requests_refused_total{reason="busy"}'), 1)
    t.match(agent.logs(), /"reason":"unauthorized".*peer request refused/, 'refusals are logged with their reason')
    t.match(agent.logs(), /"reason":"forbidden","from":"[^"]+","ref":"private\/notes:1","fetcher":"gpu-b"/)

    const runtime = new DockerRuntime(
      parseConfig(agentConfigSchema, { stateDir: join(dir.path, 'recv'), docker: { socket: receiver.socket } }),
    )
    const loaded = await runtime.loadImage(Readable.fromWeb(first.body! as never))
    t.same(loaded, { ids: [heldId], names: [], renamed: [] }, 'the receiver loads the very image id the server holds')
    const there = await runtime.inspectImage(heldId)
    t.equal(there?.id, heldId)
    t.same(there?.repoTags, [], 'saved by id: no name comes with it')

    await waitFor(
      'the upload counted',
      async () => (await metric('gpuhost_peer_uploads_total{result="complete"}')) === 1,
      30_000,
    )
    t.equal(await metric('gpuhost_peer_uploads_in_flight'), 0)
    t.ok(
      (await metric('gpuhost_peer_served_bytes_total')) > 24 * 1024 * 1024,
      'the archive bytes are counted as served',
    )
    t.match(agent.logs(), /"ref":"fleet\/model:1","fetcher":"gpu-b","bytes":\d+.*served an image to a peer/)

    // the upload slot is free again
    await waitFor('the upload slot', async () => (await status(heldId, grant('fleet/model:1'))) === 200, 30_000)
  })
}

// The peer listener over https with a certificate from a fleet CA made by openssl at test time: the
// fetching agent trusts it through peers.tls.caFile and loads the image from it; plain http to that
// port, and https without the fleet CA, get nothing.
import t from 'tap'
import { requireServices, which } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { startRegistry } from '../harness/registry.js'
import { makeImage, pushImage } from '../harness/images.js'
import { post, startAgent, testDir } from '../harness/agent.js'
import { waitFor } from '../harness/ports.js'
import { peerToken } from '../../src/peers/token.js'
import { startServingHost } from '../support/peer-fleet.js'
import { makeTestCa } from '../harness/tls.js'

const MiB = 1024 * 1024

if (!which('openssl')) {
  t.plan(0, 'skipped: needs openssl to make certificates')
} else if (requireServices(t, ['dockerd', 'docker', 'mkfs', 'docker-registry'])) {
  t.test('a fetcher reaches an https peer through the fleet CA only', async (t) => {
    const dir = testDir(t, 'gh-peer-tls-')
    const fleetCa = makeTestCa(dir.path, '/CN=fleet CA')
    const peerCert = fleetCa.issue('peer', '/CN=gpu-a', 'IP:127.0.0.1')

    const registry = await startRegistry(t)
    const [serverDisk, fetcherDisk] = await Promise.all([
      startDockerd(t, { diskMiB: 300 }),
      startDockerd(t, { diskMiB: 300 }),
    ])
    makeImage(serverDisk, { ref: 'fleet/model:1', sizeBytes: 8 * MiB })
    const ref = pushImage(serverDisk, 'fleet/model:1', registry.host)
    serverDisk.docker(['tag', 'fleet/model:1', ref])
    const configDigest = serverDisk.docker(['image', 'inspect', '--format', '{{.Id}}', ref]).trim()
    const common = { gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' }, prune: { highPercent: 100, schedule: null } }
    const { linkToken, port } = await startServingHost(t, dir, serverDisk, ref, { tls: peerCert })
    const path = `/v1/images/${configDigest}/export`
    const token = peerToken(linkToken, {
      server: 'gpu-a',
      fetcher: 'gpu-b',
      ref,
      expiresAt: (Date.now() / 1000 + 600) | 0,
    })
    const https = `https://127.0.0.1:${port}`

    // Node's fetch knows only the system CAs: the fleet's certificate is refused
    let untrusted = ''
    await waitFor(
      'the TLS listener',
      async () => {
        untrusted = await fetch(https + path).then(
          () => 'answered',
          (e: Error & { cause?: { code?: string } }) => e.cause?.code ?? e.message,
        )
        return untrusted !== 'ECONNREFUSED'
      },
      30_000,
    )
    t.match(untrusted, /UNABLE_TO_VERIFY|CERT|SELF_SIGNED/, 'https without the fleet CA is refused')
    const plain = await fetch(`http://127.0.0.1:${port}${path}`).then(
      (r) => r.status,
      () => 0,
    )
    t.equal(plain, 0, 'no plain http on the TLS port')

    const fetcher = await startAgent(
      t,
      {
        ...common,
        hostId: 'gpu-b',
        docker: { socket: fetcherDisk.socket },
        prewarm: { schedule: null, retries: 0 },
        peers: { allowLoopback: true, tls: { caFile: fleetCa.caFile } },
      },
      { waitReady: true },
    )
    const res = await post(`${fetcher.url}/v1/prewarm`, fetcher.token, {
      images: [ref],
      peers: { [ref]: [{ host: 'gpu-a', url: https + path, token }] },
    })
    t.equal(res.status, 200, JSON.stringify(res.body))
    t.match(res.body.results[0], { ref, status: 'pulled', source: 'peer:gpu-a', sourceKind: 'peer' })
    t.equal(fetcherDisk.docker(['image', 'inspect', '--format', '{{.Id}}', ref]).trim(), configDigest)
  })
}

// A host fetching a rollout's image from its peers: a registry, a serving agent on its own dockerd
// holding the image, and a fetching agent on another. The fetcher is told of three peers: the real
// one answering its first request busy (503), one that flips a byte of the archive, one that dies
// mid-stream. The busy one goes to the back of the line, the other two cost one try each; the image
// is loaded from the busy one when asked again, as the registry's config digest, named as the
// registry names it, and its layer is never read from the registry.
import t from 'tap'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { startRegistry } from '../harness/registry.js'
import { makeImage, pushImage } from '../harness/images.js'
import { post, startAgent, testDir } from '../harness/agent.js'
import { freePort } from '../harness/ports.js'
import { peerToken } from '../../src/peers/token.js'
import { startServingHost } from '../support/peer-fleet.js'

const MiB = 1024 * 1024

/**
 * a peer in front of `upstream` that alters what it relays: `flip` a byte at an offset, `die` after
 * some bytes, or answer its first request `busy` (503, as a peer at its maxUploads does)
 */
async function badPeer(
  t: { teardown(fn: () => void): void },
  upstream: string,
  fault: { flipAt?: number; dieAfter?: number; busyFirst?: boolean },
): Promise<string> {
  let requests = 0
  const relay = async (req: IncomingMessage, res: ServerResponse) => {
    if (fault.busyFirst && requests++ === 0) {
      res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: 'already serving 2 uploads' }))
      return
    }
    const up = await fetch(`${upstream}${req.url}`, { headers: { authorization: req.headers.authorization ?? '' } })
    res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/octet-stream' })
    let offset = 0
    for await (const chunk of up.body as unknown as AsyncIterable<Uint8Array>) {
      const buf = Buffer.from(chunk)
      if (fault.flipAt !== undefined && offset <= fault.flipAt && fault.flipAt < offset + buf.length)
        buf[fault.flipAt - offset] ^= 0xff
      offset += buf.length
      if (fault.dieAfter !== undefined && offset > fault.dieAfter) {
        res.socket?.destroy()
        return
      }
      if (!res.write(buf)) await new Promise((r) => res.once('drain', r))
    }
    res.end()
  }
  const server: Server = createServer((req, res) => {
    relay(req, res).catch(() => res.destroy())
  })
  const port = await freePort()
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return `http://127.0.0.1:${port}`
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs', 'docker-registry'])) {
  t.test('a corrupting and a dying peer cost one try each, a busy one is asked again: no registry read', async (t) => {
    const registry = await startRegistry(t)
    const [serverDisk, fetcherDisk] = await Promise.all([
      startDockerd(t, { diskMiB: 400 }),
      startDockerd(t, { diskMiB: 400 }),
    ])
    makeImage(serverDisk, { ref: 'fleet/model:1', sizeBytes: 24 * MiB })
    const ref = pushImage(serverDisk, 'fleet/model:1', registry.host)
    serverDisk.docker(['tag', 'fleet/model:1', ref])
    const manifest = (await (
      await fetch(`${registry.url}/v2/fleet/model/manifests/1`, {
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      })
    ).json()) as { config: { digest: string }; layers: { digest: string; size: number }[] }
    const configDigest = manifest.config.digest
    const layer = manifest.layers[0]

    const dir = testDir(t)
    const common = {
      gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
      prune: { highPercent: 100, schedule: null },
    }
    const { linkToken, port: peerPort } = await startServingHost(t, dir, serverDisk, ref)
    const real = `http://127.0.0.1:${peerPort}`
    const path = `/v1/images/${configDigest}/export`
    const token = peerToken(linkToken, {
      server: 'gpu-a',
      fetcher: 'gpu-b',
      ref,
      expiresAt: (Date.now() / 1000 + 600) | 0,
    })
    const flipping = await badPeer(t, real, { flipAt: 12 * MiB })
    const dying = await badPeer(t, real, { dieAfter: 8 * MiB })
    const busy = await badPeer(t, real, { busyFirst: true })

    const fetcher = await startAgent(
      t,
      {
        ...common,
        hostId: 'gpu-b',
        docker: { socket: fetcherDisk.socket },
        prewarm: { schedule: null, retries: 0 },
        peers: { allowLoopback: true },
      },
      { waitReady: true },
    )
    const res = await post(`${fetcher.url}/v1/prewarm`, fetcher.token, {
      images: [ref],
      peers: {
        [ref]: [
          { host: 'busy', url: busy + path, token },
          { host: 'flipping', url: flipping + path, token },
          { host: 'dying', url: dying + path, token },
        ],
      },
    })
    t.equal(res.status, 200, JSON.stringify(res.body))
    t.match(res.body.results[0], { ref, status: 'pulled', source: 'peer:busy', sourceKind: 'peer' })
    t.match(fetcher.logs(), /"peer":"busy".*peer busy: asked again/, 'the busy peer went to the back of the line')
    t.same(
      res.body.results[0].peerFailures.map((f: { host: string }) => f.host),
      ['flipping', 'dying'],
      'the result names the peers that failed, not the busy one',
    )
    t.ok(res.body.results[0].bytesPulled > 24 * MiB, 'the archive bytes are counted')
    t.match(fetcher.logs(), /"peer":"flipping".*peer fetch failed/, 'the corrupted archive was refused')
    t.match(fetcher.logs(), /"peer":"dying".*peer fetch failed/, 'the cut archive was refused')
    t.match(
      JSON.stringify(res.body),
      /"host":"dying","reason":"peer dying stopped sending its archive: /,
      "the dying peer is named as the cause, not this host's engine",
    )

    const id = fetcherDisk.docker(['image', 'inspect', '--format', '{{.Id}}', ref]).trim()
    t.equal(id, configDigest, "the fetcher holds the registry's config digest under the registry's name")
    const images = fetcherDisk.docker(['images', '-q', '--no-trunc']).split('\n').filter(Boolean)
    t.same([...new Set(images)], [configDigest], 'nothing else was left loaded')
    const layerReads = registry
      .log()
      .split('\n')
      .filter((l) => l.includes(`blobs/${layer.digest}`) && /method=GET/.test(l))
    t.same(layerReads, [], 'the layer was never read from the registry')
    const metrics = await (await fetch(`${fetcher.url}/metrics`)).text()
    const peerBytes = Number(/gpuhost_prewarm_fetched_bytes_total\{source_kind="peer"\} (\d+)/.exec(metrics)?.[1])
    t.equal(peerBytes, res.body.results[0].bytesPulled, 'the agent counts the bytes under source_kind="peer"')
  })
}

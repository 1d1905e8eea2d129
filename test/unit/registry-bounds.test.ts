// A hostile registry on loopback against the real RegistryClient: bodies over their caps (declared
// or streamed without end) are refused after reading at most the cap, and a manifest or config
// whose bytes do not hash to the digest asked for or announced is refused, so a mirror cannot
// choose the CUDA facts the gate reads.
import t from 'tap'
import { createHash } from 'node:crypto'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { RegistryClient } from '../../src/registry/client.js'

const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`
const CONFIG = JSON.stringify({ config: { Env: ['CUDA_VERSION=12.2.0', 'NVIDIA_REQUIRE_CUDA=cuda>=12.2'] } })
const OTHER_CONFIG = JSON.stringify({ config: { Env: ['CUDA_VERSION=9.0'] } })
const manifestFor = (configDigest: string) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: CONFIG.length, digest: configDigest },
    layers: [],
  })
const MANIFEST = manifestFor(sha(CONFIG))
const MANIFEST_TYPE = 'application/vnd.docker.distribution.manifest.v2+json'

/** writes `total` bytes of `fill` in 64 KiB chunks with backpressure, stopping when the client goes */
async function stream(res: ServerResponse, total: number, fill: string, sent: { bytes: number }) {
  const chunk = Buffer.alloc(64 * 1024, fill)
  while (sent.bytes < total && !res.destroyed) {
    sent.bytes += chunk.length
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done).off('close', done)
          resolve()
        }
        res.on('drain', done).on('close', done)
      })
    }
  }
  res.end()
}

t.test('a hostile registry: capped bodies, checked digests', async (t) => {
  const sent = { bytes: 0 }
  const server = createServer((req, res) => {
    const path = req.url ?? ''
    if (path === '/v2/') return res.writeHead(200).end('{}')
    if (path.startsWith('/token?')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      return void stream(res, 300e6, ' ', sent)
    }
    const m = /^\/v2\/(\w+)\/(manifests|blobs)\/(.+)$/.exec(path)
    const [, repo, kind, reference] = m ?? []
    if (repo === 'streamed' && kind === 'manifests') {
      res.writeHead(200, { 'content-type': MANIFEST_TYPE })
      return void stream(res, 300e6, ' ', sent)
    }
    if (repo === 'declared' && kind === 'manifests') {
      res.writeHead(200, { 'content-type': MANIFEST_TYPE, 'content-length': String(300e6) })
      return void stream(res, 300e6, ' ', sent)
    }
    if (repo === 'errors' && kind === 'manifests') {
      res.writeHead(404, { 'content-type': 'application/json' })
      return void stream(res, 300e6, ' ', sent)
    }
    if (repo === 'tokened') {
      const realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`
      return res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="r"` }).end()
    }
    if (kind === 'manifests') {
      const body = repo === 'swapped' ? manifestFor(sha(CONFIG)) : MANIFEST
      const headers: Record<string, string> = { 'content-type': MANIFEST_TYPE }
      if (repo === 'liar') headers['docker-content-digest'] = sha('something else')
      if (repo === 'good') headers['docker-content-digest'] = sha(MANIFEST)
      // byDigest: a digest asked for that the bytes do not hash to
      return res.writeHead(200, headers).end(reference.startsWith('sha256:') ? manifestFor(sha('x')) : body)
    }
    if (kind === 'blobs') return res.writeHead(200).end(repo === 'swapped' ? OTHER_CONFIG : CONFIG)
    res.writeHead(404).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((r) => server.close(() => r()))
  })
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`
  const client = new RegistryClient({ timeoutMs: 30_000 })
  t.teardown(() => client.close())

  const good = await client.inspectRemote(`${host}/good:1`)
  t.match(good, { digest: sha(MANIFEST) }, 'an honest answer is read, its digest computed from its bytes')

  const refusals: [string, RegExp, string][] = [
    [`${host}/streamed:1`, /over 4 MiB \(cut off at/, 'a manifest streamed without end: cut at 4 MiB'],
    [`${host}/declared:1`, /over 4 MiB \(300000000 bytes\)/, 'a manifest that declares 300 MB: refused unread'],
    [`${host}/tokened:1`, /over 1 MiB/, 'a token answer without end: cut at 1 MiB'],
    [`${host}/liar:1`, /Docker-Content-Digest header/, 'a Docker-Content-Digest that names other bytes'],
    [`${host}/swapped:1`, /hash to .*, not the digest asked for/, 'a config blob that is not the one named'],
    [`${host}/good@${sha(MANIFEST)}`, /not the digest asked for/, 'a manifest by digest that hashes otherwise'],
  ]
  for (const [ref, reason, what] of refusals) {
    const before = sent.bytes
    const rss = process.memoryUsage().rss
    await t.rejects(client.inspectRemote(ref), { message: reason }, what)
    const read = sent.bytes - before
    const grew = (process.memoryUsage().rss - rss) / 2 ** 20
    t.comment(`${what}: the server wrote ${(read / 2 ** 20).toFixed(1)} MiB, RSS +${grew.toFixed(0)} MiB`)
    t.ok(read < 64 * 2 ** 20, `${what}: not read to its end`)
  }
  const before = sent.bytes
  await t.rejects(client.inspectRemote(`${host}/errors:1`), { message: /404|not found/i }, 'an error body without end')
  t.ok(sent.bytes - before < 64 * 2 ** 20, 'the error body is not read to its end')
})

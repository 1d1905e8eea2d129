// What a refusing or redirecting peer can make a fetching host do: neither follow it elsewhere with
// the peer token, nor repeat arbitrary text into logs and results; and where a peer URL can send it:
// only to fleet addresses, the refusal made before a byte is sent.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { fetchFromPeer, PeerBusyError, peerErrorDetail, retryAfterSeconds } from '../../src/prewarm/peer-fetch.js'
import { PeerAddressError } from '../../src/peers/peer-address.js'
import { parseImageRef } from '../../src/registry/reference.js'

const DIGEST = `sha256:${'a'.repeat(64)}`

async function listen(t: Test, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function options(loads: string[]) {
  return {
    runtime: {
      loadImage: async () => {
        loads.push('load')
        return { ids: [], names: [], renamed: [] }
      },
      removeImage: async () => ({ removed: [], untagged: [] }) as never,
      tagImage: async () => undefined,
      untagImage: async () => undefined,
      listImagesWithContainers: async () => ({ images: [], containers: [] }) as never,
    },
    ref: parseImageRef('example.com/app:1'),
    configDigest: DIGEST,
    signal: AbortSignal.timeout(30_000),
    onBytes: () => undefined,
    allowLoopback: true,
  }
}

t.test('a peer that redirects is not followed, and the token goes nowhere else', async (t) => {
  const elsewhere: string[] = []
  const target = await listen(t, (req, res) => {
    elsewhere.push(String(req.headers.authorization))
    res.end('archive')
  })
  const peer = await listen(t, (_req, res) => {
    res.writeHead(302, { location: `${target}/v1/images/${DIGEST}/export` }).end()
  })
  const loads: string[] = []
  await t.rejects(
    fetchFromPeer({ host: 'gpu-2', url: `${peer}/v1/images/${DIGEST}/export`, token: 't0k' }, options(loads)),
  )
  t.same(elsewhere, [], 'the redirect target was never asked')
  t.same(loads, [], 'nothing was loaded')
})

t.test("a refusal's reason is repeated only as gpuhost's listener writes it", async (t) => {
  const peer = await listen(t, (req, res) => {
    if (req.url?.includes('json')) res.writeHead(403).end(JSON.stringify({ error: 'not wanted\nby any rollout' }))
    else res.writeHead(500).end('<html>'.padEnd(5000, 'x'))
  })
  const loads: string[] = []
  await t.rejects(fetchFromPeer({ host: 'gpu-2', url: `${peer}/json`, token: 't' }, options(loads)), {
    message: 'peer gpu-2 answered 403: not wanted by any rollout',
  })
  await t.rejects(fetchFromPeer({ host: 'gpu-2', url: `${peer}/html`, token: 't' }, options(loads)), {
    message: 'peer gpu-2 answered 500',
  })
  t.same(loads, [])
})

t.test('peerErrorDetail', async (t) => {
  t.equal(peerErrorDetail('{"error":"token expired"}'), 'token expired')
  t.equal(peerErrorDetail('{"error":"' + 'x'.repeat(300) + '"}').length, 200)
  t.equal(peerErrorDetail('{"error":{"nested":1}}'), '')
  t.equal(peerErrorDetail('not json'), '')
  t.equal(peerErrorDetail('{"error":"a\\u001b[31mb"}'), 'a [31mb')
})

t.test('a busy peer (503) is told apart, with how long it asks to wait', async (t) => {
  const peer = await listen(t, (_req, res) => {
    res.writeHead(503, { 'retry-after': '2' }).end(JSON.stringify({ error: 'already serving 2 uploads' }))
  })
  const loads: string[] = []
  const err = await fetchFromPeer({ host: 'gpu-2', url: peer, token: 't' }, options(loads)).catch((e: unknown) => e)
  t.type(err, PeerBusyError)
  t.equal((err as PeerBusyError).retryAfterSeconds, 2)
  t.equal(retryAfterSeconds(null), 5, 'none: 5 s')
  t.equal(retryAfterSeconds('Wed, 21 Oct 2026 07:28:00 GMT'), 5, 'a date: 5 s')
  t.equal(retryAfterSeconds('0'), 1, 'at least 1 s')
  t.equal(retryAfterSeconds('3600'), 30, 'at most 30 s')
})

t.test(
  'a peer at a loopback, link-local, unspecified or multicast address, by IP or by name: nothing sent',
  async (t) => {
    const asked: string[] = []
    const peer = await listen(t, (req, res) => {
      asked.push(String(req.headers.authorization))
      res.writeHead(403).end(JSON.stringify({ error: 'reached' }))
    })
    const port = new URL(peer).port
    const loads: string[] = []
    const strict = { ...options(loads), allowLoopback: false }
    const cases: [string, RegExp][] = [
      [
        `http://127.0.0.1:${port}/x`,
        /^peer gpu-2: 127\.0\.0\.1 is a loopback address: peers are fetched only from fleet/,
      ],
      [`http://127.9.9.9:${port}/x`, /127\.9\.9\.9 is a loopback address/],
      [`http://[::ffff:127.0.0.1]:${port}/x`, /::ffff:7f00:1 is a loopback address/],
      // a name: refused on what it resolves to, when the connection is made
      [`http://localhost:${port}/x`, /^peer gpu-2: localhost resolves to (127\.0\.0\.1|::1), a loopback address/],
      // 0.0.0.0 reaches this host's own listeners on Linux: without the check, `peer` would answer
      [`http://0.0.0.0:${port}/x`, /0\.0\.0\.0 is an unspecified address/],
      ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a link-local address/],
      ['http://[fe80::1]:9479/x', /fe80::1 is a link-local address/],
      ['http://224.0.0.1:9479/x', /224\.0\.0\.1 is a multicast address/],
    ]
    for (const [url, message] of cases) {
      const err = await fetchFromPeer({ host: 'gpu-2', url, token: 'peer-token' }, strict).catch((e: unknown) => e)
      t.type(err, PeerAddressError, url)
      t.match((err as Error).message, message, url)
    }
    t.same(asked, [], 'the peer listener on loopback was never asked, and no token left the host')
    t.same(loads, [], 'nothing was loaded')
    // the same listener, with peers.allowLoopback: reached, by address and by name
    for (const url of [`http://127.0.0.1:${port}/x`, `http://localhost:${port}/x`])
      await t.rejects(fetchFromPeer({ host: 'gpu-2', url, token: 'peer-token' }, options(loads)), {
        message: 'peer gpu-2 answered 403: reached',
      })
    t.same(asked, ['Bearer peer-token', 'Bearer peer-token'], 'allowLoopback: both reached it')
  },
)

// nodeFetch against a real https server on loopback with a certificate from a CA openssl makes here:
// checked against that CA, refused without it, taken unchecked when asked (an insecure registry), and read as
// fetch's answers are read: status, headers, body, no body on 204, no redirect followed, aborts.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { lookup as dnsLookup } from 'node:dns'
import { createServer as createHttpServer } from 'node:http'
import { createServer } from 'node:https'
import { createServer as createTlsServer } from 'node:tls'
import type { AddressInfo, LookupFunction } from 'node:net'
import { testDir } from '../harness/agent.js'
import { which } from '../harness/services.js'
import { makeTestCa } from '../harness/tls.js'
import { nodeFetch } from '../../src/node-fetch.js'

if (!which('openssl')) {
  t.plan(0, 'skipped: needs openssl to make a certificate')
} else {
  const dir = testDir(t)
  const testCa = makeTestCa(dir.path)
  const served = testCa.issue('registry', '/CN=registry', 'IP:127.0.0.1')
  const ca = testCa.ca
  const seen: { method?: string; type?: string; length?: string; body: string }[] = []
  const server = createServer(
    { cert: readFileSync(served.certFile), key: readFileSync(served.keyFile) },
    (req, res) => {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (d: string) => (body += d))
      req.on('end', () => {
        seen.push({
          method: req.method,
          type: req.headers['content-type'],
          length: req.headers['content-length'],
          body,
        })
        if (req.url === '/empty') return void res.writeHead(204).end()
        if (req.url === '/moved') return void res.writeHead(302, { location: 'https://example.invalid/' }).end()
        if (req.url === '/slow') return void res.writeHead(200).write('first part')
        res.writeHead(200, { 'content-type': 'application/json', 'docker-content-digest': 'sha256:abc' })
        res.end(JSON.stringify({ path: req.url, auth: req.headers.authorization ?? null }))
      })
    },
  )
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`

  t.test('checked against the given CA: the answer reads as fetch’s', async (t) => {
    const res = await nodeFetch(`${base}/v2/`, { ca, headers: { authorization: 'Bearer x' } })
    t.equal(res.status, 200)
    t.ok(res.ok)
    t.equal(res.headers.get('docker-content-digest'), 'sha256:abc')
    t.same(await res.json(), { path: '/v2/', auth: 'Bearer x' })
  })

  t.test('a certificate no CA vouches for is refused, as a transport failure', async (t) => {
    const err = await nodeFetch(`${base}/v2/`).catch((e: Error) => e)
    t.type(err, TypeError)
    t.match((err as Error & { cause?: Error }).cause?.message, /self[- ]signed|unable to (verify|get local issuer)/i)
  })

  t.test('unchecked when asked, as for an insecure registry', async (t) => {
    const res = await nodeFetch(`${base}/v2/`, { rejectUnauthorized: false })
    t.equal(res.status, 200)
    await res.body?.cancel()
  })

  t.test('a form POST carries its type and length', async (t) => {
    const form = new URLSearchParams({ grant_type: 'refresh_token', scope: 'repository:a/b:pull' })
    const res = await nodeFetch(`${base}/token`, { ca, method: 'POST', body: form })
    t.equal(res.status, 200)
    await res.text()
    t.match(seen.at(-1), {
      method: 'POST',
      type: 'application/x-www-form-urlencoded;charset=UTF-8',
      length: String(form.toString().length),
      body: form.toString(),
    })
  })

  t.test('204 has no body; a redirect comes back unfollowed', async (t) => {
    const empty = await nodeFetch(`${base}/empty`, { ca })
    t.equal(empty.status, 204)
    t.equal(empty.body, null)
    const moved = await nodeFetch(`${base}/moved`, { ca })
    t.equal(moved.status, 302)
    t.equal(moved.headers.get('location'), 'https://example.invalid/')
    await moved.body?.cancel()
  })

  t.test('an abort ends a body that never finishes', async (t) => {
    const controller = new AbortController()
    const res = await nodeFetch(`${base}/slow`, { ca, signal: controller.signal })
    t.equal(res.status, 200)
    const reading = res.text()
    controller.abort()
    await t.rejects(reading)
  })

  t.test('an answer a Response cannot carry fails the request, not the process', async (t) => {
    // a raw TLS server: a reason phrase with a control character, then a status fetch does not know
    const raw = createTlsServer({ cert: readFileSync(served.certFile), key: readFileSync(served.keyFile) }, (s) => {
      s.once('data', (request) => {
        const odd = request.toString().startsWith('GET /odd-status')
        s.end(
          odd ? 'HTTP/1.1 999 Odd\r\ncontent-length: 0\r\n\r\n' : 'HTTP/1.1 200 O\x01K\r\ncontent-length: 2\r\n\r\nok',
        )
      })
    })
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r))
    t.teardown(() => raw.close())
    const rawBase = `https://127.0.0.1:${(raw.address() as AddressInfo).port}`
    const odd = await nodeFetch(`${rawBase}/odd-reason`, { ca })
    t.equal(odd.status, 200)
    t.equal(await odd.text(), 'ok', 'the reason phrase is not carried, the answer is')
    const err = await nodeFetch(`${rawBase}/odd-status`, { ca }).catch((e: Error) => e)
    t.type(err, TypeError)
    t.match((err as Error).message, /fetch failed|fetch cannot carry/, 'a transport failure, as fetch reports one')
  })

  t.test('plain http too, through the lookup it is given; nothing but http(s)', async (t) => {
    const plain = createHttpServer((req, res) => res.end(`plain ${req.url}`))
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r))
    t.teardown(() => plain.close())
    const port = (plain.address() as AddressInfo).port
    const looked: string[] = []
    const lookup: LookupFunction = (hostname, options, callback) => {
      looked.push(hostname)
      dnsLookup(hostname, { ...options, family: 4 }, callback as never)
    }
    const res = await nodeFetch(`http://localhost:${port}/v2/`, { lookup })
    t.equal(await res.text(), 'plain /v2/')
    t.same(looked, ['localhost'], 'the name went through the lookup given')
    const refusing: LookupFunction = (_hostname, _options, callback) => callback(new Error('not here'), '', 0)
    const err = await nodeFetch(`http://localhost:${port}/`, { lookup: refusing }).catch((e: Error) => e)
    t.type(err, TypeError)
    t.match((err as Error).cause, { message: 'not here' }, "the lookup's refusal is the cause")
    await t.rejects(nodeFetch('ftp://127.0.0.1:1/'), /not an http\(s\) URL: ftp:/)
  })
}

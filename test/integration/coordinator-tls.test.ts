// The coordinator serving https:// and wss:// itself, with certificates made by openssl at test
// time: the agent trusts it only through coordinator.caFile, and a client certificate from the
// client CA that names a host authenticates an agent for that host.
import t from 'tap'
import WebSocket from 'ws'
import { readFileSync } from 'node:fs'
import { startAgent, testDir } from '../harness/agent.js'
import { startCoordinator } from '../harness/coordinator.js'
import { waitFor } from '../harness/ports.js'
import { which } from '../harness/services.js'
import { makeTestCa } from '../harness/tls.js'

if (!which('openssl')) {
  t.plan(0, 'skipped: needs openssl to make certificates')
} else {
  t.test('agents reach a wss:// coordinator through their CA file; a client certificate names a host', async (t) => {
    const dir = testDir(t, 'gh-tls-')
    const testCa = makeTestCa(dir.path)
    const server = testCa.issue('server', '/CN=gpuhost test coordinator', 'IP:127.0.0.1')
    const client = testCa.issue('client', '/CN=tls-cert-host', 'DNS:tls-cert-host')
    const ca = testCa.ca
    const coord = await startCoordinator(
      t,
      undefined,
      {
        tls: { ...server, clientCaFile: testCa.caFile },
      },
      { ca },
    )
    t.match(coord.agentsUrl, /^wss:\/\//)
    t.equal((await coord.api('/v1/hosts')).status, 200, 'the API over https with the admin token')
    t.equal((await coord.api('/v1/hosts', { token: null })).status, 401, 'and not without it')
    const plain = await fetch(`http://127.0.0.1:${coord.port}/healthz`).then(
      (r) => r.status,
      () => 0,
    )
    t.not(plain, 200, 'no plain http on the TLS port')

    const base = { docker: { socket: '/nonexistent/docker.sock' }, gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' } }
    const untrusting = await startAgent(t, {
      ...base,
      hostId: 'tls-no-ca',
      coordinator: {
        url: coord.agentsUrl,
        tokenFile: coord.tokenFileFor('tls-no-ca'),
        reconnectMaxSeconds: 1,
      },
    })
    const refused = /"why":"[^"]*(certificate|issuer)/i
    await waitFor(
      'the agent without the CA to refuse the certificate',
      () => refused.test(untrusting.logs()),
      10_000,
      100,
    )
    await untrusting.stop()

    const trusting = await startAgent(t, {
      ...base,
      hostId: 'tls-ca',
      coordinator: {
        url: coord.agentsUrl,
        tokenFile: coord.tokenFileFor('tls-ca'),
        caFile: testCa.caFile,
        reconnectMaxSeconds: 1,
      },
    })
    await waitFor(
      'the host listed over wss',
      async () => (await coord.api('/v1/hosts/tls-ca')).body.connected === true,
      15_000,
      100,
    )
    t.equal((await coord.api('/v1/hosts/tls-no-ca')).status, 404, 'the other never got through')
    await trusting.stop()

    // No bearer token: the client certificate speaks for the host it names, and only for it.
    const byCert = async (hostId: string) => {
      const cert = readFileSync(client.certFile)
      const ws = new WebSocket(coord.agentsUrl, { ca, cert, key: readFileSync(client.keyFile) })
      const inbox: any[] = []
      let closed: number | null = null
      ws.on('message', (d) => inbox.push(JSON.parse(String(d))))
      ws.on('close', (code) => {
        closed = code
      })
      await new Promise((resolve, reject) => {
        ws.once('open', resolve)
        ws.once('error', reject)
      })
      const ts = new Date().toISOString()
      ws.send(JSON.stringify({ v: 1, id: `hello-${hostId}`, ts, hostId, type: 'hello', version: '0.0.0', facts: {} }))
      await waitFor('an answer', () => inbox.length > 0 || closed !== null, 10_000, 20)
      ws.terminate()
      return { acked: inbox.some((m) => m.type === 'ack'), closed }
    }
    t.match(await byCert('tls-cert-host'), { acked: true }, "the certificate's host is accepted")
    t.match(await byCert('someone-else'), { acked: false, closed: 4001 }, 'another host is refused')
    const anonymous = await new Promise<number>((resolve) => {
      const ws = new WebSocket(coord.agentsUrl, { ca })
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0)
        ws.terminate()
      })
      ws.on('open', () => {
        resolve(101)
        ws.terminate()
      })
      ws.on('error', () => resolve(0))
    })
    t.equal(anonymous, 401, 'neither token nor certificate: 401')
  })
}

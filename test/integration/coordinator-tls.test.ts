// wss:// with a private CA: the agent trusts the coordinator only through coordinator.caFile. The
// coordinator sits behind a TLS-terminating proxy, as it would in production.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { createServer, type Server } from 'node:tls'
import { startAgent, testDir } from '../harness/agent.js'
import { startCoordinator } from '../harness/coordinator.js'
import { waitFor } from '../harness/ports.js'
import { which } from '../harness/services.js'

if (!which('openssl')) {
  t.plan(0, 'skipped: needs openssl to make a certificate')
} else {
  t.test('the agent reaches a wss:// coordinator through its CA file, and refuses it without', async (t) => {
    const dir = testDir(t, 'gh-tls-')
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', `${dir.path}/key.pem`, '-out', `${dir.path}/cert.pem`, '-days', '1', '-subj', '/CN=gpuhost test coordinator',
      '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' })
    if (made.status !== 0) t.comment(made.stderr)
    t.equal(made.status, 0, 'openssl made a certificate')
    const coord = await startCoordinator(t)
    const proxy: Server = createServer({ key: readFileSync(`${dir.path}/key.pem`), cert: readFileSync(`${dir.path}/cert.pem`) }, (tlsSocket) => {
      const plain = connect(coord.port, '127.0.0.1')
      tlsSocket.pipe(plain).pipe(tlsSocket)
      plain.on('error', () => tlsSocket.destroy())
      tlsSocket.on('error', () => plain.destroy())
    })
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()))
    t.teardown(() => new Promise<void>((r) => proxy.close(() => r())))
    const url = `wss://127.0.0.1:${(proxy.address() as { port: number }).port}/v1/agents`
    const base = { docker: { socket: '/nonexistent/docker.sock' }, gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' } }

    const untrusting = await startAgent(t, { ...base, hostId: 'tls-no-ca', coordinator: { url, tokenFile: coord.agentTokenFile, reconnectMaxSeconds: 1 } })
    await waitFor('the agent without the CA to refuse the certificate', () => /self[- ]signed certificate/i.test(untrusting.logs()), 10_000, 100)
    await untrusting.stop()

    const trusting = await startAgent(t, { ...base, hostId: 'tls-ca', coordinator: { url, tokenFile: coord.agentTokenFile, caFile: `${dir.path}/cert.pem`, reconnectMaxSeconds: 1 } })
    await waitFor('the host listed over wss', async () => (await coord.api('/v1/hosts/tls-ca')).body.connected === true, 15_000, 100)
    t.equal((await coord.api('/v1/hosts/tls-no-ca')).status, 404, 'the other never got through')
    await trusting.stop()
  })
}

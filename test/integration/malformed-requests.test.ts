// Request targets that are not URLs, sent raw as a hostile client would: the agent and the
// coordinator answer 400 and keep serving.
import t from 'tap'
import { connect } from 'node:net'
import { startAgent } from '../harness/agent.js'
import { startCoordinator } from '../harness/coordinator.js'

function rawRequest(port: number, lines: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(lines.join('\r\n') + '\r\n\r\n'))
    let answer = ''
    socket.on('data', (d) => {
      answer += d
    })
    socket.on('end', () => resolve(answer))
    socket.on('close', () => resolve(answer))
    socket.on('error', reject)
    socket.setTimeout(5000, () => socket.destroy())
  })
}

const BAD_TARGETS = ['//', '//:99999/', '//[x]/']

t.test('the agent answers 400 to targets that are not URLs and keeps serving', async (t) => {
  const agent = await startAgent(t, {
    docker: { socket: '/nonexistent/docker.sock' },
    gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
  })
  for (const target of BAD_TARGETS) {
    const answer = await rawRequest(agent.port, [`GET ${target} HTTP/1.1`, 'Host: x', 'Connection: close'])
    t.match(answer, /^HTTP\/1\.1 400/, `GET ${target}: 400`)
  }
  const escape = await fetch(`${agent.url}/v1/%E0%A4%A`)
  t.ok(escape.status === 404 || escape.status === 400, `a malformed escape answers ${escape.status}`)
  t.equal((await fetch(`${agent.url}/healthz`)).status, 200, 'still serving')
  t.equal((await agent.stop()).code, 0, 'and stops cleanly')
})

t.test('the coordinator refuses an upgrade to a target that is not a URL and keeps serving', async (t) => {
  const coordinator = await startCoordinator(t)
  for (const target of BAD_TARGETS) {
    const answer = await rawRequest(coordinator.port, [
      `GET ${target} HTTP/1.1`,
      'Host: x',
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ])
    t.match(answer, /^HTTP\/1\.1 400/, `upgrade to ${target}: 400`)
  }
  const hosts = await coordinator.api('/v1/hosts/%E0%A4%A')
  t.equal(hosts.status, 400, 'a malformed escape in a path parameter is a bad request')
  t.equal((await fetch(`${coordinator.url}/healthz`)).status, 200, 'still serving')
})

t.test('a body trickled in with a valid token is cut after http.bodyTimeoutSeconds', async (t) => {
  const agent = await startAgent(t, {
    docker: { socket: '/nonexistent/docker.sock' },
    gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
    http: { bodyTimeoutSeconds: 2 },
  })
  const body = JSON.stringify({ dryRun: true, pad: 'x'.repeat(580) })
  const outcome = await new Promise<{ answer: string; sent: number }>((resolve, reject) => {
    let answer = ''
    let sent = 0
    let timer: NodeJS.Timeout | undefined
    const socket = connect(agent.port, '127.0.0.1', () => {
      socket.write(
        [
          'POST /v1/prune HTTP/1.1',
          `Host: 127.0.0.1:${agent.port}`,
          `Authorization: Bearer ${agent.token}`,
          'Content-Type: application/json',
          `Content-Length: ${Buffer.byteLength(body)}`,
        ].join('\r\n') + '\r\n\r\n',
      )
      // One byte every quarter second: the whole body would take two and a half minutes.
      timer = setInterval(() => {
        if (sent < body.length && !socket.destroyed) socket.write(body[sent++])
      }, 250)
    })
    const done = () => {
      clearInterval(timer)
      resolve({ answer, sent })
    }
    socket.on('data', (d) => {
      answer += d
    })
    socket.on('close', done)
    socket.on('error', (err) => (answer ? done() : reject(err)))
  })
  t.match(outcome.answer, /^HTTP\/1\.1 408/, 'answered 408')
  t.ok(outcome.sent < body.length, `cut before the body was complete (${outcome.sent} of ${body.length} bytes)`)
  t.equal((await fetch(`${agent.url}/healthz`)).status, 200, 'still serving')
})

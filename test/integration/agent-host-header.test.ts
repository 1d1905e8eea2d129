// DNS rebinding against the built agent: a name an attacker controls, resolved to the agent's
// loopback address as a rebound browser resolves it, is answered 421 on every path (reads, writes
// with the right token); the agent still answers its own names, addresses and http.allowedHosts.
import t from 'tap'
import { request } from 'node:http'
import { connect } from 'node:net'
import { hostname } from 'node:os'
import { startAgent } from '../harness/agent.js'

/** GET or POST through a lookup that sends `name` to 127.0.0.1, as DNS rebinding does */
function viaName(
  name: string,
  port: number,
  path: string,
  opts: { method?: string; token?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: name,
        port,
        path,
        method: opts.method ?? 'GET',
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json' } : {}),
        },
        agent: false,
        lookup: (_name, options, callback) =>
          options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4),
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      },
    )
    req.on('error', reject)
    req.end(opts.method === 'POST' ? '{"dryRun":true}' : undefined)
  })
}

t.test("a rebound name is refused with 421 on every path; the agent's own names are served", async (t) => {
  const agent = await startAgent(t, {
    docker: { socket: '/nonexistent/docker.sock' },
    gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
    http: { allowedHosts: ['prometheus-target.fleet.test', '.gpu.fleet.test'] },
  })
  const attacker = 'rebind.attacker.example'
  for (const path of ['/v1/status', '/v1/images', '/metrics', '/healthz', '/readyz']) {
    const res = await viaName(attacker, agent.port, path)
    t.equal(res.status, 421, `${path} for ${attacker}: 421`)
    t.notMatch(res.body, /hostId|gpuhost_/, 'and nothing of the agent in the answer')
  }
  const write = await viaName(attacker, agent.port, '/v1/prune', { method: 'POST', token: agent.token })
  t.equal(write.status, 421, 'a POST with the right token too')
  t.match(JSON.parse(write.body).error, /Host does not name this agent: an IP address, localhost, its hostname/)
  t.match(agent.logs(), /refused a request whose Host does not name this agent/, 'logged')
  t.match(agent.logs(), /rebind\.attacker\.example/, 'with the host')
  // an absolute-form target names its host before the Host header does
  const absolute = await new Promise<string>((resolve, reject) => {
    const socket = connect(agent.port, '127.0.0.1', () =>
      socket.write(`GET http://${attacker}/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
    )
    let answer = ''
    socket.on('data', (d) => (answer += d))
    socket.on('close', () => resolve(answer))
    socket.on('error', reject)
  })
  t.match(absolute, /^HTTP\/1\.1 421/, 'GET http://attacker/… with Host: 127.0.0.1: 421')
  // one suffix too far is not under the domain
  t.equal((await viaName('gpu.fleet.test.attacker.example', agent.port, '/v1/status')).status, 421)

  for (const name of [
    '127.0.0.1',
    'localhost',
    'prometheus.localhost',
    hostname(),
    'prometheus-target.fleet.test',
    'gpu-7.gpu.fleet.test',
    'gpu.fleet.test',
  ]) {
    const res = await viaName(name, agent.port, '/v1/status')
    t.equal(res.status, 200, `${name}: served`)
  }
  const prune = await viaName('localhost', agent.port, '/v1/prune', { method: 'POST', token: agent.token })
  t.not(prune.status, 421, `a POST naming localhost reaches the route (${prune.status})`)
})

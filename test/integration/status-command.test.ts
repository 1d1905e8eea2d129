// gpuhost status and /readyz against a running agent on a host without Docker or a GPU: not
// ready, naming the runtime and what to set; status lists what fails and exits 1.
import t from 'tap'
import { runCliAsync, startAgent, testDir } from '../harness/agent.js'
import { freePort, waitFor } from '../harness/ports.js'

t.test('a host without Docker: /readyz 503 naming the runtime, gpuhost status exit 1', async (t) => {
  const agent = await startAgent(t, {
    docker: { socket: '/nonexistent/docker.sock' },
    gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
    tokenFile: null,
  })
  let ready: { status: number; body: any } = { status: 0, body: null }
  await waitFor(
    'the first snapshot',
    async () => {
      const res = await fetch(`${agent.url}/readyz`)
      ready = { status: res.status, body: await res.json() }
      return ready.body.status !== 'starting'
    },
    60_000,
    200,
  )
  t.equal(ready.status, 503, 'not ready without its runtime')
  t.match(ready.body, {
    status: 'unready',
    reason: /^Docker is unreachable: .*ENOENT/,
    hint:
      'no socket at /nonexistent/docker.sock: start Docker, or set docker.socket to where it listens ' +
      '(runtime.kind: containerd on a containerd or Kubernetes host)',
  })
  const failing = ready.body.failing.map((f: { component: string }) => f.component)
  t.ok(failing.includes('collector:images') && failing.includes('collector:gpu'), `failing: ${failing.join(', ')}`)
  t.equal((await fetch(`${agent.url}/healthz`)).status, 200, 'alive all the same')
  t.match(
    agent.logs(),
    /Docker is unreachable: no socket at \/nonexistent\/docker\.sock: start Docker, or set docker\.socket/,
  )

  const text = await runCliAsync(['status', '--url', agent.url])
  t.equal(text.code, 1, 'a part failing: exit 1')
  t.match(text.stdout, /^host \S+ · gpuhost \d+\.\d+\.\d+/)
  t.match(text.stdout, /docker +unreachable: .*\n +no socket at \/nonexistent\/docker\.sock: start Docker/)
  t.match(text.stdout, /collector images failing: /)
  t.match(text.stdout, /gpu +unavailable: \/nonexistent\/nvidia-smi not found: install the NVIDIA driver/)

  const json = await runCliAsync(['status', '--json', '--url', agent.url])
  t.equal(json.code, 1)
  const status = JSON.parse(json.stdout)
  t.equal(status.docker.reachable, false)
  t.equal(status.collectors.images.success, false)
  t.equal(status.collectors.disk.success, false, 'no root dir to measure without Docker or disk.path')
  const listed: string[] = status.failingComponents.map((f: { component: string }) => f.component)
  for (const c of ['collector:disk', 'collector:gpu', 'collector:images'])
    t.ok(listed.includes(c), `failingComponents lists ${c}`)

  const viaConfig = await runCliAsync(['--json', 'status', '--config', agent.configFile])
  t.equal(viaConfig.code, 1, 'the URL comes from listen in the config')
  t.equal(JSON.parse(viaConfig.stdout).hostId, status.hostId)
})

t.test('an agent that does not answer: exit 69', async (t) => {
  const port = await freePort()
  const r = await runCliAsync(['status', '--url', `http://127.0.0.1:${port}`])
  t.equal(r.code, 69)
  t.match(r.stderr, /unreachable: ECONNREFUSED/)
  const dir = testDir(t)
  const cfg = dir.file('agent.yaml', `listen: 127.0.0.1:${port}\n`)
  t.equal((await runCliAsync(['status', '--config', cfg])).code, 69)
})

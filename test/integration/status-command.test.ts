// gpuhost status against a running agent (no Docker needed: it reports Docker unreachable).
import t from 'tap'
import { runCliAsync, startAgent, testDir } from '../harness/agent.js'
import { freePort } from '../harness/ports.js'

t.test('gpuhost status', async (t) => {
  const agent = await startAgent(
    t,
    { docker: { socket: '/nonexistent/docker.sock' }, tokenFile: null },
    { waitReady: true },
  )

  const text = await runCliAsync(['status', '--url', agent.url])
  t.equal(text.code, 0, text.stderr)
  t.match(text.stdout, /^host \S+ · gpuhost \d+\.\d+\.\d+/)
  t.match(text.stdout, /docker +unreachable: /)
  t.match(text.stdout, /collector images failing: /)

  const json = await runCliAsync(['status', '--json', '--url', agent.url])
  t.equal(json.code, 0)
  const status = JSON.parse(json.stdout)
  t.equal(status.docker.reachable, false)
  t.equal(status.collectors.images.success, false)
  t.equal(status.collectors.disk.success, false, 'no root dir to measure without Docker or disk.path')

  const viaConfig = await runCliAsync(['--json', 'status', '--config', agent.configFile])
  t.equal(viaConfig.code, 0, 'the URL comes from listen in the config')
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

// `gpuhost coordinator` as a service manager and an operator see it: config errors, print-config,
// SIGTERM at any phase of start-up.
import t from 'tap'
import { spawn } from 'node:child_process'
import { CLI, runCli, runCliAsync, testDir } from '../harness/agent.js'
import { freePort } from '../harness/ports.js'

t.test('a bad config exits 78 naming every bad key; --print-config shows the defaults', async (t) => {
  const dir = testDir(t)
  const bad = runCli([
    'coordinator',
    '--config',
    dir.file('bad.yaml', 'listen: nowhere\npingIntervalSeconds: 0\nsurprise: 1\n'),
  ])
  t.equal(bad.code, 78)
  for (const key of ['listen', 'pingIntervalSeconds', 'surprise'])
    t.match(bad.stderr, new RegExp(`\\b${key}:`), `names ${key}`)
  const printed = runCli([
    '--json',
    'coordinator',
    '--config',
    dir.file('ok.yaml', 'dataDir: /tmp/x\n'),
    '--print-config',
  ])
  t.equal(printed.code, 0)
  t.match(JSON.parse(printed.stdout), {
    listen: '127.0.0.1:9478',
    dataDir: '/tmp/x',
    adminTokenFile: '/etc/gpuhost/admin-token',
    maxFrameBytes: 1048576,
    store: { kind: 'sqlite', url: null, poolSize: 10 },
  })
  const pg = runCli([
    '--json',
    'coordinator',
    '--config',
    dir.file('pg.yaml', 'store: { kind: postgres, url: "postgres://gpuhost:s3cret@db:5432/fleet" }\n'),
    '--print-config',
  ])
  t.equal(pg.code, 0)
  t.equal(JSON.parse(pg.stdout).store.url, 'postgres://gpuhost:***@db:5432/fleet', 'without the password')
  t.notMatch(pg.stdout, /s3cret/)
  const noUrl = runCli(['coordinator', '--config', dir.file('pg-bad.yaml', 'store: { kind: postgres }\n')])
  t.equal(noUrl.code, 78)
  t.match(noUrl.stderr, /store\.url: is required with kind: postgres/)
})

t.test('a PostgreSQL store that cannot be reached stops the start with the reason', async (t) => {
  const dir = testDir(t)
  const port = await freePort()
  const config = dir.file(
    'c.yaml',
    `listen: 127.0.0.1:${port}\nadminTokenFile: null\nagentTokenFile: null\n` +
      `store: { kind: postgres, url: "postgres://gpuhost@127.0.0.1:${await freePort()}/fleet" }\n`,
  )
  const r = await runCliAsync(['coordinator', '--config', config])
  t.not(r.code, 0)
  t.match(r.stdout + r.stderr, /cannot open the PostgreSQL fleet store: .*ECONNREFUSED/)
})

t.test('SIGTERM during start-up and while serving exits cleanly', async (t) => {
  const dir = testDir(t)
  const port = await freePort()
  const config = dir.file(
    'c.yaml',
    `listen: 127.0.0.1:${port}\ndataDir: ${dir.path}/data\nadminTokenFile: null\nagentTokenFile: null\n`,
  )
  for (const delayMs of [0, 50, 150, 300, 1000]) {
    const child = spawn(process.execPath, [CLI, 'coordinator', '--config', config], { stdio: 'ignore' })
    await new Promise((r) => setTimeout(r, delayMs))
    child.kill('SIGTERM')
    const code = await new Promise<number | null>((r) => child.on('exit', (c, sig) => r(c ?? (sig ? -1 : null))))
    // Before node installs its handlers the default action ends the process by signal; both are clean stops.
    t.ok(code === 0 || code === -1, `SIGTERM after ${delayMs} ms: exit ${code}`)
  }
})

t.test('coordinator token prints a host token from the agent secret, or says why it cannot', async (t) => {
  const dir = testDir(t)
  const config = dir.file('c.yaml', `agentSecretFile: ${dir.file('secret', 'a-secret\n')}\n`)
  const first = runCli(['coordinator', 'token', 'node-1', '--config', config])
  t.equal(first.code, 0)
  t.match(first.stdout, /^v1\.bm9kZS0x\.[A-Za-z0-9_-]{43}\n$/, 'v1.<host id>.<mac>')
  t.equal(
    runCli(['coordinator', 'token', 'node-1', '--config', config]).stdout,
    first.stdout,
    'the same host, the same token',
  )
  t.not(
    runCli(['coordinator', 'token', 'node-2', '--config', config]).stdout,
    first.stdout,
    'another host, another token',
  )
  const json = runCli(['--json', 'coordinator', 'token', 'node-1', '--config', config])
  t.same(JSON.parse(json.stdout), { hostId: 'node-1', token: first.stdout.trim() })
  const missing = runCli([
    'coordinator',
    'token',
    'node-1',
    '--config',
    dir.file('m.yaml', `agentSecretFile: ${dir.path}/none\n`),
  ])
  t.equal(missing.code, 78)
  t.match(missing.stderr, /cannot read agentSecretFile: .*none/)
  t.equal(runCli(['coordinator', 'token']).code, 2, 'no host id: a usage error')
})

// The daemon as a service manager sees it: health answers, clean exit on SIGTERM or SIGINT at any phase.
import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, readFileSync } from 'node:fs'
import { CLI, runCli, startAgent, testDir, post } from '../harness/agent.js'
import { onCleanup, killAndWait } from '../harness/cleanup.js'
import { freePort, waitFor } from '../harness/ports.js'

t.test('serves /healthz and exits 0 on SIGTERM', async (t) => {
  const started = Date.now()
  const agent = await startAgent(t, {
    docker: { socket: '/nonexistent/docker.sock' },
    gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
  })
  // How fast is measured by bench/startup.ts; here only that it answers, and the time for the record.
  t.comment(`healthz answered after ${Date.now() - started} ms`)
  t.equal((await fetch(`${agent.url}/healthz`)).status, 200, 'health answers')
  const status = await (await fetch(`${agent.url}/v1/status`)).json()
  t.equal(status.hostId.length > 0, true, 'status names the host')
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
  t.equal(status.version, pkg.version)
  const { code, ms } = await agent.stop('SIGTERM')
  t.equal(code, 0, 'exit code 0')
  t.comment(`stopped in ${ms} ms`)
})

t.test('exits 0 on SIGTERM once every component has started', async (t) => {
  // Started through `env -u NODE_OPTIONS`: the test runner hooks every node child it spawns, and its
  // hooks listen for signals, which would hide a signal a library re-raises (proper-lockfile's
  // signal-exit does when it sees no other listener). This is the agent as it runs in production.
  const dir = testDir(t)
  const port = await freePort()
  const config = dir.file(
    'agent.yaml',
    `listen: 127.0.0.1:${port}\nstateDir: ${dir.path}/state\ntokenFile: null\n` +
      'docker: { socket: /nonexistent/docker.sock }\ngpu: { nvidiaSmi: /nonexistent/nvidia-smi }\n',
  )
  const child = spawn('sh', [
    '-c',
    'exec env -u NODE_OPTIONS "$0" "$@"',
    process.execPath,
    CLI,
    'agent',
    '--config',
    config,
  ])
  const undo = onCleanup(`agent ${child.pid}`, () => killAndWait(child.pid!, 5000))
  t.teardown(() => undo())
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  const exited = new Promise<[number | null, string | null]>((r) => child.on('exit', (c, sig) => r([c, sig])))
  // Started: the prune lock's library is loaded by then (the start-up recovery takes the lock).
  await waitFor('the agent started', () => /"msg":"agent started"/.test(output), 60_000, 50)
  await new Promise((r) => setTimeout(r, 500))
  child.kill('SIGTERM')
  t.same(await exited, [0, null], 'exit code 0, not the end by a re-raised signal')
})

t.test('SIGINT stops it too', async (t) => {
  const agent = await startAgent(t, {})
  const { code } = await agent.stop('SIGINT')
  t.equal(code, 0)
})

t.test('SIGTERM during start-up still exits 0', async (t) => {
  const dir = testDir(t)
  const port = await freePort()
  const config = dir.file('agent.yaml', `listen: 127.0.0.1:${port}\nstateDir: ${dir.path}/state\ntokenFile: null\n`)
  for (const delayMs of [0, 50, 150, 300]) {
    const child = spawn(process.execPath, [CLI, 'agent', '--config', config], { stdio: 'ignore' })
    const undo = onCleanup(`agent ${child.pid}`, () => killAndWait(child.pid!, 5000))
    t.teardown(() => undo())
    let exitedAt = 0
    const exited = new Promise<number | null>((r) =>
      child.on('exit', (c, sig) => {
        exitedAt = Date.now()
        r(c ?? (sig ? -1 : null))
      }),
    )
    await new Promise((r) => setTimeout(r, delayMs))
    const started = Date.now()
    child.kill('SIGTERM')
    const gone = () => child.exitCode !== null || child.signalCode !== null
    await waitFor(`exit after SIGTERM at ${delayMs} ms`, gone, 60_000, 50)
    const code = await exited
    // Before node installs its handlers the default action ends the process by signal; both are clean stops.
    t.ok(code === 0 || code === -1, `SIGTERM after ${delayMs} ms: exit ${code}`)
    t.comment(`stopped ${exitedAt - started} ms after SIGTERM at ${delayMs} ms`)
  }
})

t.test('POSTs need the bearer token', async (t) => {
  const agent = await startAgent(t, {})
  t.equal((await post(`${agent.url}/v1/status`, null)).status, 405, 'status is read-only')
  // any POST route answers 401 before it looks at the body; the prune route is added by its feature
  const routes = ['/v1/prune', '/v1/prewarm', '/hooks/alertmanager']
  for (const r of routes) {
    const res = await post(`${agent.url}${r}`, 'wrong')
    t.ok(res.status === 401 || res.status === 404, `${r} with a wrong token: ${res.status}`)
  }
})

t.test('a token file others can read is refused: every POST answers 403 and the log says how to fix it', async (t) => {
  const dir = testDir(t)
  const tokenFile = dir.file('token', 'readable-by-all\n')
  chmodSync(tokenFile, 0o644)
  const agent = await startAgent(t, { tokenFile, docker: { socket: '/nonexistent/docker.sock' } })
  const res = await post(`${agent.url}/v1/prune`, 'readable-by-all', { dryRun: true })
  t.equal(res.status, 403, 'the token in the file opens nothing')
  t.match(res.body.error, /the token file \S+ cannot be used \(the agent's log says why\)/, 'not "no token file"')
  t.match(agent.logs(), /token file \S+ is readable by others \(mode 0644\): chmod 600 /, 'the log names the fix')
})

t.test('a bad config exits 78 naming every bad key', async (t) => {
  const dir = testDir(t)
  const file = dir.file(
    'bad.yaml',
    [
      'listen: nowhere',
      'prune: { highPercent: 70, lowPercent: 75, keepPerRepository: -1 }',
      'gpu: { timeoutSeconds: 0 }',
      'surprise: true',
    ].join('\n'),
  )
  const r = runCli(['agent', '--config', file])
  t.equal(r.code, 78)
  for (const key of ['listen', 'prune.lowPercent', 'prune.keepPerRepository', 'gpu.timeoutSeconds', 'surprise']) {
    t.match(r.stderr, new RegExp(`\\b${key.replace('.', '\\.')}:`), `names ${key}`)
  }
  t.match(r.stderr, /prune\.lowPercent: must be below prune\.highPercent/)
  const yamlErr = runCli(['agent', '--config', dir.file('broken.yaml', 'prune: [1, 2\n')])
  t.equal(yamlErr.code, 78, 'broken YAML is a config error too')
  t.match(yamlErr.stderr, /not valid YAML/)
  const missing = runCli(['agent', '--config', `${dir.path}/none.yaml`])
  t.equal(missing.code, 78)
  t.match(missing.stderr, /cannot read the file/)
})

t.test('--print-config shows the effective config with every default', async (t) => {
  const dir = testDir(t)
  const file = dir.file('a.yaml', 'hostId: node-7\nprune: { highPercent: 90 }\n')
  const r = runCli(['--json', 'agent', '--config', file, '--print-config'])
  t.equal(r.code, 0)
  const cfg = JSON.parse(r.stdout)
  t.equal(cfg.hostId, 'node-7')
  t.equal(cfg.prune.highPercent, 90)
  t.equal(cfg.prune.lowPercent, 80, 'defaults filled in')
  t.equal(cfg.prewarm.concurrency, 2)
  t.equal(cfg.listen, '127.0.0.1:9477')
})

t.test('usage errors exit 2, --version and --help exit 0', async (t) => {
  t.equal(runCli(['no-such-command']).code, 2)
  t.equal(runCli(['compat']).code, 2, 'compat without --driver')
  const v = runCli(['--version'])
  t.equal(v.code, 0)
  t.match(v.stdout, /^\d+\.\d+\.\d+/)
  t.equal(runCli(['--help']).code, 0)
})

// `npm start` as a newcomer runs it, in a copy of the project (its own build, its own config): the
// agent it starts is the process npm's signals reach, so SIGTERM to npm stops the agent, and npm's
// exit is the agent's. A shell between them (`build && node …` without exec) would keep the agent
// serving after npm is gone.
import t from 'tap'
import { spawn } from 'node:child_process'
import { cpSync, existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { testDir } from '../harness/agent.js'
import { onCleanup } from '../harness/cleanup.js'
import { freePort, waitFor } from '../harness/ports.js'

const ROOT = new URL('../..', import.meta.url).pathname

/** the pids under `pid`, read from /proc (npm → its script's process) */
function childrenOf(pid: number): number[] {
  const tasks = `/proc/${pid}/task`
  if (!existsSync(tasks)) return []
  return readFileSync(`${tasks}/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

t.test('SIGTERM to npm start stops the agent, and npm exits with the agent’s code', async (t) => {
  const dir = testDir(t, 'gh-npm-start-')
  for (const f of ['package.json', 'tsconfig.json', 'src'])
    cpSync(join(ROOT, f), join(dir.path, f), { recursive: true })
  symlinkSync(join(ROOT, 'node_modules'), join(dir.path, 'node_modules'))
  const port = await freePort()
  cpSync(join(ROOT, 'config'), join(dir.path, 'config'), { recursive: true })
  writeFileSync(
    join(dir.path, 'config', 'agent.yaml'),
    [
      `listen: 127.0.0.1:${port}`,
      'stateDir: ./state',
      'tokenFile: null',
      'docker: { socket: /nonexistent/docker.sock }',
      'gpu: { nvidiaSmi: /nonexistent/nvidia-smi }',
      'prune: { schedule: null }',
      'prewarm: { schedule: null }',
    ].join('\n') + '\n',
  )
  // NODE_OPTIONS off: the test runner's hooks in every node child listen for signals themselves
  const { NODE_OPTIONS: _hooks, ...env } = process.env
  const npm = spawn('npm', ['start'], { cwd: dir.path, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  npm.stdout.on('data', (d) => (output += d))
  npm.stderr.on('data', (d) => (output += d))
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)))
  // whatever happens, nothing of this test keeps running: the whole group goes
  const undo = onCleanup('npm start', () => {
    try {
      process.kill(-npm.pid!, 'SIGKILL')
    } catch {
      /* gone */
    }
  })
  t.teardown(undo)

  const started = Date.now()
  await waitFor(
    'npm start to build and serve /healthz',
    async () => {
      if (npm.exitCode !== null) throw new Error(`npm start exited ${npm.exitCode}: ${output}`)
      return (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok ?? false
    },
    240_000,
    500,
  )
  t.comment(`built and serving after ${Date.now() - started} ms`)
  const agents = childrenOf(npm.pid!)
  t.equal(agents.length, 1, 'npm has one child')
  t.match(readFileSync(`/proc/${agents[0]}/cmdline`, 'utf8'), /^node\0.*dist\/cli\.js\0agent/, 'and it is the agent')

  npm.kill('SIGTERM')
  const code = await exited
  t.equal(code, 0, "npm's exit is the agent's: 0 after SIGTERM")
  await waitFor('the agent to be gone', () => !alive(agents[0]), 30_000, 100)
  t.notOk(alive(agents[0]), 'the agent stopped with npm')
  t.match(output, /stopped|stopping/i, "the agent's own shutdown was logged")
})

// Delivery between agent and coordinator when the coordinator falters: a store that cannot write
// (its filesystem full) answers with retryable errors and the agent resends in order on the same
// connection; a command sent before the coordinator was killed is sent again and runs once.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { post, startAgent, testDir } from '../harness/agent.js'
import { coordinatorSetup, startCoordinator, type RunningCoordinator } from '../harness/coordinator.js'
import { waitFor } from '../harness/ports.js'

const NO_DOCKER = { docker: { socket: '/nonexistent/docker.sock' }, gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' } }

/** Fills the filesystem holding `dir` until a write fails with ENOSPC. */
function fill(dir: string): string {
  const file = join(dir, 'filler')
  const fd = openSync(file, 'w')
  const chunk = Buffer.alloc(64 * 1024, 1)
  try {
    for (;;) writeSync(fd, chunk)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
  } finally {
    closeSync(fd)
  }
  return file
}

async function events(coord: RunningCoordinator, hostId: string, type: string): Promise<any[]> {
  return (await coord.api(`/v1/events?hostId=${hostId}&type=${type}`)).body.events
}

const asRoot = process.getuid?.() === 0
t.test(
  'events the coordinator could not store arrive once it can, in order, without a reconnect',
  {
    skip: asRoot ? false : 'needs root to mount a small tmpfs',
  },
  async (t) => {
    const dir = testDir(t, 'gh-store-full-')
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', dir.path], { encoding: 'utf8' })
    if (mounted.status !== 0) return void t.fail(`cannot mount a tmpfs: ${mounted.stderr}`)
    // Registered first, so it runs after the coordinator has stopped.
    t.teardown(() => {
      spawnSync('umount', ['-l', dir.path])
    })
    mkdirSync(join(dir.path, 'data'))
    const coord = await startCoordinator(t, { ...(await coordinatorSetup(t)), dataDir: join(dir.path, 'data') })
    const agent = await startAgent(t, {
      ...NO_DOCKER,
      hostId: 'store-fail',
      coordinator: {
        url: coord.agentsUrl,
        tokenFile: coord.tokenFileFor('store-fail'),
        resendSeconds: 1,
        pingIntervalSeconds: 2,
      },
    })
    await waitFor(
      'the host connected',
      async () => (await coord.api('/v1/hosts/store-fail')).body.connected === true,
      15_000,
      100,
    )
    await waitFor(
      'the start event stored',
      async () => (await events(coord, 'store-fail', 'agent.started')).length === 1,
      15_000,
      100,
    )

    const filler = fill(dir.path)
    const runs = 3
    for (let i = 0; i < runs; i++) {
      // Without Docker each run fails, which is fine here: it still publishes prewarm.started and .finished.
      await post(`${agent.url}/v1/prewarm`, agent.token, { images: [`example.invalid/run-${i}:1`], dryRun: true })
    }
    await waitFor(
      'the coordinator to fail a write',
      () => /cannot write to the fleet database/.test(coord.logs()),
      15_000,
      100,
    )
    await waitFor(
      'the agent to be told',
      () => /could not take an entry; it is sent again later/.test(agent.logs()),
      15_000,
      100,
    )
    t.equal((await events(coord, 'store-fail', 'prewarm.finished')).length, 0, 'nothing of the runs stored yet')

    rmSync(filler)
    await waitFor(
      'every run stored',
      async () => (await events(coord, 'store-fail', 'prewarm.finished')).length === runs,
      30_000,
      200,
    )
    const all = (await coord.api('/v1/events?hostId=store-fail')).body.events.filter((e: any) =>
      e.type.startsWith('prewarm.'),
    )
    t.equal(all.length, runs * 2, 'each started and finished event once')
    t.equal(new Set(all.map((e: any) => e.id)).size, all.length, 'no duplicates')
    const times = all.map((e: any) => Date.parse(e.ts))
    t.same(
      times,
      [...times].sort((a, b) => a - b),
      'stored in the order they happened',
    )
    const finished = all.filter((e: any) => e.type === 'prewarm.finished')
    t.equal(
      (await coord.api('/v1/hosts/store-fail')).body.lastPrewarm.ts,
      finished[finished.length - 1].ts,
      'lastPrewarm is the newest',
    )
    t.equal(
      (agent.logs().match(/connected to the coordinator|coordinator reachable again/g) ?? []).length,
      1,
      'one connection throughout',
    )
    t.notOk(/coordinator link closed/.test(agent.logs()), 'the link never closed')
    await agent.stop()
  },
)

t.test('a command sent just before the coordinator was killed is sent again and runs once', async (t) => {
  const setup = await coordinatorSetup(t)
  let coord = await startCoordinator(t, setup)
  const agent = await startAgent(t, {
    ...NO_DOCKER,
    hostId: 'once',
    coordinator: {
      url: coord.agentsUrl,
      tokenFile: coord.tokenFileFor('once'),
      reconnectMaxSeconds: 1,
    },
  })
  await waitFor(
    'the host connected',
    async () => (await coord.api('/v1/hosts/once')).body.connected === true,
    15_000,
    100,
  )

  // The agent is frozen: the command waits in its socket, unread, while the coordinator dies.
  process.kill(agent.pid, 'SIGSTOP')
  let commandId: string
  try {
    commandId = (await coord.api('/v1/hosts/once/commands', { body: { action: 'status' } })).body.commandId
    const status = async () => (await coord.api(`/v1/commands/${commandId}`)).body.status
    await waitFor('the command sent', async () => (await status()) === 'running', 10_000, 50)
    await coord.stop('SIGKILL')
    coord = await startCoordinator(t, setup)
  } finally {
    process.kill(agent.pid, 'SIGCONT')
  }
  const answered = async () => (await coord.api(`/v1/commands/${commandId!}`)).body.status === 'succeeded'
  await waitFor('the command answered', answered, 30_000, 100)
  t.match((await coord.api(`/v1/commands/${commandId}`)).body.result, { hostId: 'once' }, 'its result is stored')
  await waitFor('the repeat answered', () => /a repeated command/.test(agent.logs()), 15_000, 100)
  const runs = agent
    .logs()
    .split('\n')
    .filter((l) => l.includes(commandId) && /running a command from the coordinator/.test(l))
  t.equal(runs.length, 1, 'the agent ran it once, though the restarted coordinator sent it again')
  await agent.stop()
})

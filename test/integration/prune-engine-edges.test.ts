// Prune at the edges of the engine, against a private dockerd: stopped, frozen (SIGSTOP), and a
// removal cut short by SIGKILL. The runtime is gpuhost's own, pointed at that daemon.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createServer, type Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { requireServices } from '../harness/services.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { ROOT, startAgent, post, testDir } from '../harness/agent.js'
import { killAndWait } from '../harness/cleanup.js'
import { waitFor } from '../harness/ports.js'
import { makeImage } from '../harness/images.js'
import { EventBus, type AgentEvent } from '../../src/core/events.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { readFilesystem } from '../../src/inventory/disk.js'
import { runPrune } from '../../src/prune/executor.js'
import { REMOVAL_JOURNAL } from '../../src/runtime/removal-journal.js'
import { daysAgo, fill, seedUsage, tagsOf } from '../support/prune-fixtures.js'
import { readImageFacts, dockerClient } from '../support/docker-images.js'
import { runtimeFor } from '../support/runtime.js'

const dockerdPid = (dockerd: PrivateDockerd) => Number(readFileSync(join(dockerd.dir, 'docker.pid'), 'utf8').trim())

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** an old, never used image per ref: every one is eligible */
const old = () => ({ firstSeen: daysAgo(30), lastUsed: null })

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('a prune against a dockerd that went away stops at the first failure and reports an error', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 300 })
    const refs = ['gone/a:1', 'gone/b:1', 'gone/c:1', 'gone/d:1', 'gone/e:1', 'gone/f:1']
    fill(dockerd, refs)
    const images = await readImageFacts(dockerClient(dockerd), old)
    const bus = new EventBus()
    const events: AgentEvent[] = []
    bus.subscribe((e) => events.push(e))
    const config = parseConfig(agentConfigSchema, { prune: { keepPerRepository: 0 } })
    const report = await runPrune(
      {
        runtime: runtimeFor(dockerd),
        measure: readFilesystem,
        bus,
        log: pino({ level: 'silent' }),
        now: () => new Date(),
        policy: config.prune,
        pullsInFlight: () => [],
      },
      { images, diskPath: dockerd.dataRoot },
      { trigger: 'cli', dryRun: false, targetPercent: 0 },
      {
        beforeExecute: async (plan) => {
          t.equal(plan.plan.length, refs.length, 'every image was planned')
          await dockerd.kill()
        },
      },
    )
    t.equal(report.result, 'error', 'an error, not "not enough"')
    t.match(report.error, /Docker is unreachable/)
    t.same(report.failed, [], 'no image is reported as failed: the run stopped at the first')
    t.equal(events.filter((e) => e.type === 'prune.image').length, 0, 'no per-image event for images never tried')
  })

  t.test('a frozen dockerd: unreachable within seconds in status and metrics, and a prune answers 503', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 300 })
    const ids = fill(dockerd, ['frozen/a:1', 'frozen/b:1', 'frozen/c:1', 'frozen/d:1'])
    const state = join(testDir(t).path, 'state')
    seedUsage(state, Object.fromEntries(Object.values(ids).map((id) => [id, old()])))
    const agent = await startAgent(
      t,
      {
        stateDir: state,
        gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
        docker: { socket: dockerd.socket, timeoutSeconds: 5, pingIntervalSeconds: 1, pingTimeoutSeconds: 1 },
        prune: { highPercent: 100, lowPercent: 0, keepPerRepository: 0, schedule: null },
      },
      { waitReady: true },
    )
    const status = async () => await (await fetch(`${agent.url}/v1/status`)).json()
    const metrics = async () => (await fetch(`${agent.url}/metrics`)).text()
    t.equal((await status()).docker.reachable, true, 'reachable before the freeze')

    const pid = dockerdPid(dockerd)
    process.kill(pid, 'SIGSTOP')
    const frozenAt = Date.now()
    try {
      await waitFor('docker.reachable false', async () => (await status()).docker.reachable === false, 60_000, 250)
      // A figure, not an assertion: expected about pingIntervalSeconds + pingTimeoutSeconds (2 s here).
      t.comment(`unreachable ${Date.now() - frozenAt} ms after SIGSTOP`)
      t.match((await status()).docker.reason, /no answer to a ping/)
      await waitFor(
        'the images collector marked failed',
        async () => /gpuhost_collector_success\{collector="images"\} 0/.test(await metrics()),
        30_000,
        250,
      )
      const pruneStarted = Date.now()
      const pruned = await post(`${agent.url}/v1/prune`, agent.token, {})
      t.comment(`the prune answered ${Date.now() - pruneStarted} ms after it was asked (docker.timeoutSeconds 5)`)
      t.equal(pruned.status, 503, 'POST /v1/prune: 503')
      t.equal(pruned.body.result, 'error')
      t.same(pruned.body.removed, [])
      t.same(pruned.body.failed, [], 'it did not try image after image')
    } finally {
      process.kill(pid, 'SIGCONT')
    }
    await waitFor('reachable again', async () => (await status()).docker.reachable === true, 60_000, 250)
    t.pass('reachable again once dockerd runs')
  })

  t.test(
    'SIGKILL in the middle of removing an image of three repositories: the next start puts its names back',
    async (t) => {
      const dockerd = await startDockerd(t, { diskMiB: 300 })
      makeImage(dockerd, { ref: 'multi/one:1', sizeBytes: 4 * 1024 * 1024 })
      dockerd.docker(['tag', 'multi/one:1', 'multi/two:1'])
      dockerd.docker(['tag', 'multi/one:1', 'multi/three:1'])
      const id = dockerd.docker(['images', '-q', '--no-trunc', 'multi/one:1']).trim()
      const state = join(testDir(t).path, 'state')
      // A process that removes the image with gpuhost's runtime and hangs once the extra names are
      // gone, before the image itself goes: it is killed there, as a crash would.
      const script = `
      const { DockerRuntime } = await import(${JSON.stringify(join(ROOT, 'dist/runtime/docker.js'))})
      const { agentConfigSchema, parseConfig } = await import(${JSON.stringify(join(ROOT, 'dist/config.js'))})
      const runtime = new DockerRuntime(parseConfig(agentConfigSchema, {
        stateDir: ${JSON.stringify(state)},
        docker: { socket: ${JSON.stringify(dockerd.socket)} },
      }))
      await runtime.removeImage({ id: ${JSON.stringify(id)}, refs: [] }, {
        // Held open by a timer: an unsettled promise alone would let the process end by itself.
        beforeLastReference: () => {
          process.stdout.write('names removed\\n')
          setInterval(() => {}, 60_000)
          return new Promise(() => {})
        },
      })`
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      t.teardown(() => {
        if (child.exitCode === null && child.pid) killAndWait(child.pid, 1000)
      })
      let out = ''
      child.stdout.on('data', (d) => {
        out += String(d)
      })
      await waitFor('the extra names removed', () => out.includes('names removed'), 60_000, 50)
      process.kill(child.pid!, 'SIGKILL')
      await waitFor('the removing process gone', () => !isAlive(child.pid!), 10_000, 50)
      const left = tagsOf(dockerd).filter((r) => r.startsWith('multi/'))
      t.equal(left.length, 1, `the crash left one name: ${left}`)
      t.ok(JSON.parse(readFileSync(join(state, REMOVAL_JOURNAL), 'utf8')).removals[id], 'the journal holds the removal')

      const agent = await startAgent(
        t,
        {
          stateDir: state,
          docker: { socket: dockerd.socket },
          gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
          prune: { highPercent: 100, schedule: null },
        },
        { waitReady: true },
      )
      await waitFor(
        'the names put back',
        () => tagsOf(dockerd).filter((r) => r.startsWith('multi/')).length === 3,
        30_000,
        250,
      )
      t.same(
        tagsOf(dockerd)
          .filter((r) => r.startsWith('multi/'))
          .sort(),
        ['multi/one:1', 'multi/three:1', 'multi/two:1'],
      )
      await waitFor(
        'the journal cleared',
        () => Object.keys(JSON.parse(readFileSync(join(state, REMOVAL_JOURNAL), 'utf8')).removals).length === 0,
        10_000,
        100,
      )
      // The log line follows the journal write and reaches stdout a moment later: wait for it too.
      await waitFor(
        'the restore in the audit log',
        () => /put back names an interrupted removal took off/.test(agent.logs()),
        10_000,
        100,
      )
      t.match(agent.logs(), /put back names an interrupted removal took off/)
    },
  )

  t.test('a name that a pull of this process is writing is never taken off by a removal', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 300 })
    // A registry that accepts connections and never answers: the pull stays in flight until aborted.
    const sockets: Socket[] = []
    const silent = createServer((s) => {
      sockets.push(s)
    })
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    t.teardown(() => {
      for (const s of sockets) s.destroy()
      silent.close()
    })
    const pulled = `127.0.0.1:${(silent.address() as { port: number }).port}/race/b`
    makeImage(dockerd, { ref: 'race/a:1', sizeBytes: 1024 * 1024 })
    dockerd.docker(['tag', 'race/a:1', `${pulled}:1`])
    dockerd.docker(['tag', 'race/a:1', 'race/c:1'])
    const id = dockerd.docker(['images', '-q', '--no-trunc', 'race/a:1']).trim()
    const runtime = runtimeFor(dockerd)
    const abort = new AbortController()
    const pull = runtime
      .pull({
        name: pulled,
        reference: '1',
        signal: abort.signal,
        layers: [],
        totalBytes: 0,
        onProgress: () => undefined,
      })
      .catch((err: Error) => err)
    const outcome = await runtime.removeImage({ id, refs: [] })
    abort.abort()
    await pull
    t.equal(outcome.outcome, 'skipped', `not removed: ${JSON.stringify(outcome)}`)
    t.same(
      tagsOf(dockerd)
        .filter((r) => r.includes('race/'))
        .sort(),
      [`${pulled}:1`, 'race/a:1', 'race/c:1'],
      'every name is still there',
    )
  })
}

// The agent's state directory on the same filesystem as Docker's root, filled to 100 % by root: the
// outbox and the usage file cannot grow. Events and results must still reach the coordinator, and
// what the agent wrote before a restart on the full disk must survive it.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { requireServices } from '../harness/services.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { startCoordinator, coordinatorSetup, type RunningCoordinator } from '../harness/coordinator.js'
import { startAgent, post, runCli, type RunningAgent } from '../harness/agent.js'
import { waitFor } from '../harness/ports.js'
import { makeImage } from '../harness/images.js'
import { daysAgo, seedUsage } from '../support/prune-fixtures.js'

const MiB = 1024 * 1024
const HOST = 'full-disk-host'
const DRY_RUNS = 5

/** as root, writes until the filesystem refuses: nothing is left for anyone */
function fillToTheBrim(dockerd: PrivateDockerd): string {
  const filler = join(dockerd.mountpoint, 'filler')
  spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'status=none'])
  spawnSync('dd', ['if=/dev/zero', `of=${filler}-tail`, 'bs=4k', 'status=none'])
  spawnSync('sync')
  return filler
}

function dfPercent(path: string): number {
  const line = spawnSync('df', ['--output=pcent', path], { encoding: 'utf8' }).stdout.trim().split('\n')[1]
  return Number(line.replace('%', ''))
}

/** old, never-used images the prune may remove, with their usage record in stateDir */
function oldImages(dockerd: PrivateDockerd, stateDir: string, n: number): void {
  const usage: Record<string, { firstSeen: string; lastUsed: null }> = {}
  for (let i = 0; i < n; i++) {
    usage[makeImage(dockerd, { ref: `old/img:${i}`, sizeBytes: 10 * MiB })] = { firstSeen: daysAgo(30), lastUsed: null }
  }
  seedUsage(stateDir, usage)
}

interface LinkTo {
  agentsUrl: string
  tokenFile: string | null
}

function agentConfig(dockerd: PrivateDockerd, link: LinkTo | null, stateDir: string, extra = {}) {
  return {
    hostId: HOST,
    stateDir,
    docker: { socket: dockerd.socket },
    gpu: { nvidiaSmi: '/nonexistent/nvidia-smi' },
    disk: { checkIntervalSeconds: 1 },
    prune: { highPercent: 100, lowPercent: 90, minAgeSeconds: 0, schedule: null },
    prewarm: { schedule: null },
    ...(link ? { coordinator: { url: link.agentsUrl, tokenFile: link.tokenFile, reconnectMaxSeconds: 1 } } : {}),
    ...extra,
  }
}

async function events(coordinator: RunningCoordinator, type: string): Promise<{ id: string; ts: string; data: any }[]> {
  const { body } = await coordinator.api(`/v1/events?hostId=${HOST}&type=${type}&limit=10000`)
  return body.events
}

/** waits until the coordinator holds events of `type` that `enough` accepts */
type Seen = { data: any }[]

async function arrived(coordinator: RunningCoordinator, type: string, enough: (e: Seen) => boolean, ms = 30_000) {
  await waitFor(`${type} at the coordinator`, async () => enough(await events(coordinator, type)), ms)
}

const pendingOf = async (agent: RunningAgent) =>
  (await (await fetch(`${agent.url}/v1/status`)).json()).coordinator?.pending

async function dryRuns(agent: RunningAgent): Promise<void> {
  for (let i = 0; i < DRY_RUNS; i++) {
    const r = await post(`${agent.url}/v1/prune`, agent.token, { dryRun: true })
    if (r.status !== 200) throw new Error(`dry run answered ${r.status}: ${JSON.stringify(r.body)}`)
  }
}

async function metric(agent: RunningAgent, pattern: RegExp): Promise<number> {
  const m = pattern.exec(await (await fetch(`${agent.url}/metrics`)).text())
  return m ? Number(m[1]) : 0
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('with no reserve, entries wait in memory on a full disk and are written when space returns', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 300 })
    const stateDir = join(dockerd.mountpoint, 'gpuhost')
    oldImages(dockerd, stateDir, 1)
    const setup = await coordinatorSetup(t)
    let coordinator = await startCoordinator(t, setup)
    const link = { agentsUrl: setup.agentsUrl, tokenFile: setup.tokenFileFor(HOST) }
    const config = agentConfig(dockerd, link, stateDir, { state: { reserveBytes: 0 } })
    let agent = await startAgent(t, config, { waitReady: true })
    await arrived(coordinator, 'agent.started', (e) => e.length > 0)
    await coordinator.stop()

    const filler = fillToTheBrim(dockerd)
    t.equal(dfPercent(dockerd.mountpoint), 100, 'the filesystem of Docker and stateDir is full')
    await dryRuns(agent)
    const errors = await metric(agent, /gpuhost_state_write_errors_total\{store="outbox"\} (\d+)/)
    t.ok(errors > 0, `the failed writes are counted (${errors})`)
    const status = await (await fetch(`${agent.url}/v1/status`)).json()
    t.ok(status.coordinator.pending >= 2 * DRY_RUNS, `held entries are pending (${status.coordinator.pending})`)

    rmSync(filler, { force: true })
    rmSync(`${filler}-tail`, { force: true })
    await waitFor('the outbox written again', () => /state can be written again/.test(agent.logs()), 30_000)
    // Killed once written: only what reached the disk can come back.
    await agent.stop('SIGKILL')
    agent = await startAgent(t, config)
    coordinator = await startCoordinator(t, setup)
    await arrived(coordinator, 'prune.finished', (e) => e.length >= DRY_RUNS, 60_000)
    const finished = await events(coordinator, 'prune.finished')
    t.equal(finished.filter((e) => e.data.dryRun === true).length, DRY_RUNS, 'every dry run of the full period arrived')
    t.same(
      finished.map((e) => e.ts),
      finished
        .map((e) => e.ts)
        .slice()
        .sort(),
      'in the order they happened',
    )
    t.equal((await events(coordinator, 'prune.started')).length, DRY_RUNS, 'and every prune.started')
    await arrived(coordinator, 'state.write_failed', (e) => e.some((x) => x.data.store === 'outbox'))
    t.pass('the coordinator is told that state could not be written')
    await waitFor('nothing pending', async () => (await pendingOf(agent)) === 0, 30_000)
  })

  t.test('with the reserve, what was written on a full disk survives a restart on that disk', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 300 })
    const stateDir = join(dockerd.mountpoint, 'gpuhost')
    oldImages(dockerd, stateDir, 8)
    const setup = await coordinatorSetup(t)
    let coordinator = await startCoordinator(t, setup)
    const config = agentConfig(dockerd, { agentsUrl: setup.agentsUrl, tokenFile: setup.tokenFileFor(HOST) }, stateDir)
    let agent = await startAgent(t, config, { waitReady: true })
    await arrived(coordinator, 'agent.started', (e) => e.length > 0)
    const reserve = join(stateDir, 'reserve')
    t.equal(statSync(reserve).size, 8 * MiB, 'the reserve is in place')
    await coordinator.stop()

    const filler = fillToTheBrim(dockerd)
    await dryRuns(agent)
    t.notOk(existsSync(reserve), 'the reserve was released for the outbox')
    // Killed: nothing gets a chance to be written on the way out.
    await agent.stop('SIGKILL')
    agent = await startAgent(t, config)
    coordinator = await startCoordinator(t, setup)
    await arrived(coordinator, 'prune.finished', (e) => e.length >= DRY_RUNS, 60_000)
    t.equal(
      (await events(coordinator, 'prune.finished')).filter((e) => e.data.dryRun === true).length,
      DRY_RUNS,
      'every dry run before the kill arrived, the disk still full',
    )

    // The released reserve is room enough for Docker to remove images: the prune frees the disk.
    const pruned = await post(`${agent.url}/v1/prune`, agent.token, {})
    t.equal(pruned.body.result, 'ok', `a prune on the full disk frees it: ${pruned.body.error ?? pruned.body.result}`)
    const realRun = (e: Seen) => e.some((x) => x.data.dryRun === false && x.data.result === 'ok')
    await arrived(coordinator, 'prune.finished', realRun)
    await arrived(coordinator, 'prune.image', (e) => e.length === pruned.body.removed.length)
    await waitFor('the reserve made again', () => existsSync(reserve) && statSync(reserve).size === 8 * MiB, 30_000)
    rmSync(filler, { force: true })
    rmSync(`${filler}-tail`, { force: true })
  })

  t.test('a prune starts on a disk full to the last block: the reserve lets Docker remove images', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 300 })
    const stateDir = join(dockerd.mountpoint, 'gpuhost')
    oldImages(dockerd, stateDir, 8)
    // No coordinator: nothing but the prune itself writes on the full disk.
    const config = agentConfig(dockerd, null, stateDir)
    const agent = await startAgent(t, config, { waitReady: true })
    const reserve = join(stateDir, 'reserve')
    await waitFor('the reserve', () => existsSync(reserve) && statSync(reserve).size === 8 * MiB, 30_000)
    fillToTheBrim(dockerd)
    t.equal(dfPercent(dockerd.mountpoint), 100, 'full')
    const pruned = await post(`${agent.url}/v1/prune`, agent.token, {})
    t.equal(pruned.status, 200)
    t.equal(pruned.body.result, 'ok', `the prune frees the disk: ${pruned.body.error ?? pruned.body.result}`)
    await waitFor('the reserve made again', () => existsSync(reserve) && statSync(reserve).size === 8 * MiB, 30_000)
    // The reserve, made again after the prune, is the only thing on top of lowPercent.
    const df = spawnSync('df', ['-B1', '--output=used,avail', dockerd.mountpoint], { encoding: 'utf8' })
    const line = df.stdout.trim().split('\n')[1]
    const [used, avail] = line.trim().split(/\s+/).map(Number)
    t.ok((used - 8 * MiB) / (used + avail) <= 0.9, 'down to lowPercent, by df')
  })

  t.test('gpuhost prune by hand on a disk full to the last block gives up the reserve too', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 300 })
    const stateDir = join(dockerd.mountpoint, 'gpuhost')
    oldImages(dockerd, stateDir, 8)
    const agent = await startAgent(t, agentConfig(dockerd, null, stateDir), { waitReady: true })
    const reserve = join(stateDir, 'reserve')
    await waitFor('the reserve', () => existsSync(reserve) && statSync(reserve).size === 8 * MiB, 30_000)
    // The agent is stopped (an operator's maintenance): only the command line is left to free the disk.
    await agent.stop()
    const filler = fillToTheBrim(dockerd)
    t.equal(dfPercent(dockerd.mountpoint), 100, 'full')
    const run = runCli(['prune', '--config', agent.configFile, '--json'])
    t.equal(run.code, 0, run.stderr.slice(-2000))
    const report = JSON.parse(run.stdout)
    t.equal(report.result, 'ok', `the prune frees the disk: ${report.error ?? report.result}`)
    t.ok(report.removed.length > 0)
    t.match(run.stderr, /the state reserve is given up for the prune/)
    t.notOk(existsSync(reserve), 'given up; the agent makes it again when it runs')
    rmSync(filler, { force: true })
    rmSync(`${filler}-tail`, { force: true })
  })
}

// Rollouts end to end: the built coordinator, three built agents each with its own private dockerd
// on its own loop disk, one registry. One host at a time; a host whose (stand-in) driver is too old
// for an image skips it without downloading it; a coordinator restart mid-rollout finishes it;
// pause and cancel stop it; a held image is released on request.
import t from 'tap'
import { requireServices } from '../harness/services.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { startRegistry, type PrivateRegistry } from '../harness/registry.js'
import { makeImage, pushImage } from '../harness/images.js'
import { runCli, startAgent } from '../harness/agent.js'
import {
  rolloutEnded,
  startCoordinator,
  waitForCommand,
  waitRollout,
  type RunningCoordinator,
} from '../harness/coordinator.js'
import { fakeNvidiaSmi } from '../harness/nvidia-smi.js'
import { waitFor } from '../harness/ports.js'

const MiB = 1024 * 1024
const NEW_DRIVER = 'xml/geforce-rtx-4090_driver-535.86.05_dtd-v12.xml'
const OLD_DRIVER = 'xml/tesla-t4_driver-515.105.01_dtd-v11.xml'

function publish(d: PrivateDockerd, r: PrivateRegistry, ref: string, env?: Record<string, string>): string {
  makeImage(d, { ref, sizeBytes: 2 * MiB, env })
  const pushed = pushImage(d, ref, r.host)
  d.docker(['rmi', ref])
  return pushed
}

const tags = (d: PrivateDockerd) => d.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']).split('\n')

/** how many images the agent's wanted set holds, whatever their state */
async function wantedCount(agentUrl: string): Promise<number> {
  const text = await (await fetch(`${agentUrl}/metrics`)).text()
  const lines = text.split('\n').filter((l) => l.startsWith('gpuhost_prewarm_wanted_images{'))
  return lines.reduce((sum, l) => sum + Number(l.split(' ').pop()), 0)
}

const finished = rolloutEnded

async function events(coord: RunningCoordinator, type: string): Promise<any[]> {
  const res = await coord.api(`/v1/events?type=${type}&limit=10000`)
  return res.body.events
}

if (requireServices(t, ['dockerd', 'docker', 'docker-registry', 'mkfs'])) {
  t.test('rollouts', async (t) => {
    const registry = await startRegistry(t)
    const hosts = ['gpu-a', 'gpu-b', 'gpu-old']
    const dockerds = await Promise.all(hosts.map(() => startDockerd(t, { diskMiB: 200 })))
    const byHost = Object.fromEntries(hosts.map((h, i) => [h, dockerds[i]]))
    const [d0] = dockerds
    const plain = publish(d0, registry, 'team/plain:1')
    const cuda12 = publish(d0, registry, 'team/cuda12:1', { CUDA_VERSION: '12.2.0', NVIDIA_REQUIRE_CUDA: 'cuda>=12.2' })
    const third = publish(d0, registry, 'team/third:1')
    const fourth = publish(d0, registry, 'team/fourth:1')

    const coord = await startCoordinator(t)
    // a coordinator started again lives as long as the agents, not only the subtest that restarts it
    const outer = t
    let current = coord
    const smiNew = fakeNvidiaSmi(t, { fixture: NEW_DRIVER })
    const smiOld = fakeNvidiaSmi(t, { fixture: OLD_DRIVER })
    const agentUrl: Record<string, string> = {}
    for (const hostId of hosts) {
      const agent = await startAgent(t, {
        hostId,
        labels: { pool: 'train' },
        docker: { socket: byHost[hostId].socket },
        gpu: { nvidiaSmi: hostId === 'gpu-old' ? smiOld : smiNew, timeoutSeconds: 5 },
        prune: { schedule: null },
        prewarm: { schedule: null, retries: 0 },
        coordinator: { url: coord.agentsUrl, tokenFile: coord.tokenFileFor(hostId), reconnectMaxSeconds: 1 },
      })
      agentUrl[hostId] = agent.url
    }
    let firstRollout = ''
    const connected = async () => (await current.api('/v1/hosts')).body.hosts.filter((h: any) => h.connected).length
    await waitFor('three agents connected', async () => (await connected()) === 3, 60_000, 200)

    t.test('bad requests are refused with a reason; writes need the admin token', async (t) => {
      const bad = await coord.api('/v1/rollouts', { body: { images: [], maxParallelHosts: 0 } })
      t.equal(bad.status, 400)
      t.match(bad.body.error, /images.*maxParallelHosts/s)
      const selector = await coord.api('/v1/rollouts', {
        body: { images: [plain], maxParallelHosts: 1, selector: 'a in (' },
      })
      t.equal(selector.status, 400)
      // Not a reference: a line break would otherwise reach every host's wanted set and node labels.
      const forged = await coord.api('/v1/rollouts', {
        body: { images: ['x\ngpuhost.io/gpu.available=true'], maxParallelHosts: 1 },
      })
      t.match(forged, { status: 400, body: { error: /images\.0: not a valid image reference/ } })
      const release = await coord.api(`/v1/hosts/gpu-a/wanted/${encodeURIComponent('x\ny')}`, { method: 'DELETE' })
      t.equal(release.status, 400)
      const anonymous = await coord.api('/v1/rollouts', { body: { images: [plain], maxParallelHosts: 1 }, token: null })
      t.equal(anonymous.status, 401)
      t.equal((await coord.api('/v1/rollouts/nope/cancel', { method: 'POST' })).status, 404)
      const dry = await coord.api('/v1/rollouts', { body: { images: [plain], maxParallelHosts: 1, dryRun: true } })
      t.equal(dry.status, 200)
      t.same(dry.body.hosts.map((h: any) => h.hostId).sort(), hosts.slice().sort(), 'a dry run names the hosts')
      t.same((await coord.api('/v1/rollouts')).body.rollouts, [], 'and stores nothing')
      const remote = ['--url', coord.url, '--token-file', coord.adminTokenFile]
      const cli = runCli([
        'rollout',
        'start',
        ...remote,
        '--image',
        plain,
        '--max-parallel',
        '1',
        '--dry-run',
        '--json',
      ])
      t.equal(cli.code, 0, cli.stderr)
      t.equal(JSON.parse(cli.stdout).hosts.length, 3, 'gpuhost rollout start --dry-run --json')
      const noImage = runCli(['rollout', 'start', ...remote, '--max-parallel', '1'])
      t.equal(noImage.code, 2)
      t.match(noImage.stderr, /--image/)
    })

    t.test('one host at a time; the old driver skips the CUDA 12.2 image without downloading it', async (t) => {
      const res = await coord.api('/v1/rollouts', {
        body: { images: [plain, cuda12], selector: 'pool=train', maxParallelHosts: 1 },
      })
      t.equal(res.status, 201, JSON.stringify(res.body))
      firstRollout = res.body.id
      const r = await waitRollout(coord, res.body.id, { until: finished, what: 'to finish' })
      t.equal(r.state, 'succeeded')
      t.same(r.totals.hosts, { pending: 0, running: 0, succeeded: 3, skipped: 0, failed: 0 })
      t.ok(r.totals.bytesPulled > 0)
      t.same(
        r.totals.bytesBySource,
        { registry: r.totals.bytesPulled, mirror: 0, peer: 0 },
        'every byte came from the registry, and the status says so',
      )
      const host = (id: string) => r.hosts.find((h: any) => h.hostId === id)
      for (const id of ['gpu-a', 'gpu-b']) {
        t.same(
          host(id)
            .images.map((i: any) => i.status)
            .sort(),
          ['pulled', 'pulled'],
          `${id} pulled both`,
        )
        t.ok(host(id).bytesPulled >= 4 * MiB, `${id} reports the bytes pulled`)
        t.ok(tags(byHost[id]).includes(cuda12))
      }
      const old = host('gpu-old').images.find((i: any) => i.ref === cuda12)
      t.match(old, { status: 'skipped', skip: 'incompatible' }, 'skipped as incompatible')
      t.match(old.reason, /cuda>=12\.2|12\.2/, 'with the reason')
      t.notOk(tags(byHost['gpu-old']).includes(cuda12), 'never downloaded')
      t.ok(tags(byHost['gpu-old']).includes(plain), 'the other image was pulled')
      const oldProgress = (await events(coord, 'pull.progress')).filter((e) => e.hostId === 'gpu-old')
      t.notOk(
        oldProgress.some((e) => e.data.ref === cuda12),
        'no pull progress of it on that host',
      )

      // The agents' own prewarm events: no two hosts' prewarms of this rollout overlap.
      const startedAt = (await events(coord, 'prewarm.started')).filter((e) => e.data.trigger === 'coordinator')
      const endedAt = (await events(coord, 'prewarm.finished')).filter((e) => e.data.trigger === 'coordinator')
      const spans = hosts.map((h) => ({
        h,
        from: Date.parse(startedAt.find((e) => e.hostId === h).ts),
        to: Date.parse(endedAt.find((e) => e.hostId === h).ts),
      }))
      spans.sort((a, b) => a.from - b.from)
      for (let i = 1; i < spans.length; i++) {
        t.ok(spans[i].from >= spans[i - 1].to, `${spans[i].h} started after ${spans[i - 1].h} finished`)
      }

      const rolloutEvents = [
        ...(await events(coord, 'rollout.started')),
        ...(await events(coord, 'rollout.host.finished')),
        ...(await events(coord, 'rollout.finished')),
      ].filter((e) => e.data.rolloutId === res.body.id)
      t.same(
        rolloutEvents.map((e) => e.type),
        [
          'rollout.started',
          'rollout.host.finished',
          'rollout.host.finished',
          'rollout.host.finished',
          'rollout.finished',
        ],
      )
      const metrics = String((await coord.api('/metrics')).body)
      t.match(metrics, /gpuhost_coordinator_rollouts\{state="succeeded"\} 1/)
      t.match(metrics, /gpuhost_coordinator_rollout_hosts\{state="succeeded"\} 3/)
      t.match(metrics, /gpuhost_coordinator_rollout_bytes_pulled_total \d+/)

      const remote = ['--url', coord.url, '--token-file', coord.adminTokenFile]
      const status = runCli(['rollout', 'status', res.body.id, ...remote])
      t.equal(status.code, 0, status.stderr)
      t.match(status.stdout, /succeeded +gpu-old/, 'gpuhost rollout status lists the hosts')
      const waited = runCli(['rollout', 'status', res.body.id, ...remote, '--wait', '--json'])
      t.equal(JSON.parse(waited.stdout).state, 'succeeded', '--wait --json on a finished rollout')

      // Held by the rollout; released on request.
      const released = await coord.api(`/v1/hosts/gpu-a/wanted/${encodeURIComponent(plain)}`, { method: 'DELETE' })
      t.equal(released.status, 202)
      const done = await waitForCommand(coord, released.body.commandId)
      t.same(done.result, { released: [plain] })
      t.equal(await wantedCount(agentUrl['gpu-a']), 1, 'gpu-a holds only the other image now')
      t.equal(await wantedCount(agentUrl['gpu-b']), 2, 'gpu-b holds both')
    })

    t.test('a coordinator restart in the middle finishes the rollout, each host pulling once', async (t) => {
      const res = await current.api('/v1/rollouts', {
        body: { images: [third], maxParallelHosts: 1, replaces: [firstRollout] },
      })
      t.equal(res.status, 201)
      await current.stop()
      current = await startCoordinator(outer, coord)
      await waitFor('agents back', async () => (await connected()) === 3, 60_000, 200)
      const r = await waitRollout(current, res.body.id, { until: finished, what: 'to finish after the restart' })
      t.equal(r.state, 'succeeded')
      for (const h of hosts) t.ok(tags(byHost[h]).includes(third), `${h} has it`)
      for (const h of hosts) t.equal(await wantedCount(agentUrl[h]), 1, `${h} holds this rollout's image only`)
      const runs = (await events(current, 'prewarm.started')).filter((e) => e.data.images.includes(third))
      t.same(runs.map((e) => e.hostId).sort(), hosts.slice().sort(), 'one prewarm per host')
    })

    t.test('pause starts no host; cancel gives up the rest', async (t) => {
      const res = await current.api('/v1/rollouts', { body: { images: [fourth], maxParallelHosts: 1 } })
      t.equal(res.status, 201)
      const paused = await current.api(`/v1/rollouts/${res.body.id}/pause`, { method: 'POST' })
      t.equal(paused.status, 200)
      t.equal(paused.body.state, 'paused')
      const idle = await waitRollout(current, res.body.id, {
        until: (r) => r.totals.hosts.running === 0,
        what: 'to run nothing',
      })
      t.ok(idle.totals.hosts.pending >= 1, 'hosts wait while paused')
      t.equal((await current.api(`/v1/rollouts/${res.body.id}/pause`, { method: 'POST' })).status, 409)
      const cancelled = await current.api(`/v1/rollouts/${res.body.id}/cancel`, { method: 'POST' })
      t.equal(cancelled.status, 200)
      const r = await waitRollout(current, res.body.id, {
        until: (x) => x.totals.hosts.pending === 0,
        what: 'pending given up',
      })
      t.equal(r.state, 'cancelled')
      const gaveUp = r.hosts.filter((h: any) => h.reason === 'the rollout was cancelled')
      t.ok(gaveUp.length >= 1)
      for (const h of gaveUp) t.notOk(tags(byHost[h.hostId]).includes(fourth), `${h.hostId} never pulled it`)
      const resumed = await current.api(`/v1/rollouts/${res.body.id}/resume`, { method: 'POST' })
      t.equal(resumed.status, 409, 'a cancelled rollout is not resumed')
    })
  })
}

// Disk and image inventory against a private dockerd on a loop-mounted ext4: the figures the agent
// reports match df and what the test created; last-used times follow containers and survive an
// agent restart; the agent rides out a dockerd restart.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { requireServices } from '../harness/services.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { createContainer, makeImage } from '../harness/images.js'
import { startAgent, testDir, type RunningAgent } from '../harness/agent.js'
import { waitFor } from '../harness/ports.js'
import { pino } from 'pino'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { takeSnapshotOnce } from '../../src/inventory/feature.js'

const MiB = 1024 * 1024

async function getJson(url: string): Promise<any> {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`${url}: ${res.status}`)
  return res.json()
}

function metricValue(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`))
  if (!line) throw new Error(`no ${name}{${labels}} in /metrics`)
  return Number(line.split(' ').pop())
}

async function imageFacts(agent: RunningAgent, id: string): Promise<any> {
  const { images } = await getJson(`${agent.url}/v1/images`)
  return images?.find((i: { id: string }) => i.id === id)
}

function imageSize(dockerd: PrivateDockerd, id: string): number {
  return Number(dockerd.docker(['image', 'inspect', id, '--format', '{{.Size}}']).trim())
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs', 'promtool'])) {
  t.test('inventory of a private dockerd', async (top) => {
    const t = top
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    const a = makeImage(dockerd, {
      ref: 'test/a:1',
      sizeBytes: 6 * MiB,
      env: { CUDA_VERSION: '12.2.0', NVIDIA_REQUIRE_CUDA: 'cuda>=12.2', PATH: '/bin' },
    })
    const b = makeImage(dockerd, { ref: 'test/b:1', sizeBytes: 3 * MiB })
    const old = makeImage(dockerd, { ref: 'test/c:1', sizeBytes: 2 * MiB })
    const c = makeImage(dockerd, { ref: 'test/c:1', sizeBytes: 1 * MiB }) // `old` loses its tag: dangling
    const stateDir = join(testDir(t).path, 'state')
    let agent = await startAgent(
      t,
      { docker: { socket: dockerd.socket }, stateDir, tokenFile: null },
      { waitReady: true },
    )

    await t.test('filesystem figures match df within 1 %', async (t) => {
      const status = await getJson(`${agent.url}/v1/status`)
      t.equal(status.docker.reachable, true)
      t.equal(status.docker.rootDir, dockerd.dataRoot)
      t.equal(status.disk.mountpoint, dockerd.mountpoint)
      const [, size, used, avail] = execFileSync('df', ['-B1', '--output=target,size,used,avail', dockerd.mountpoint], {
        encoding: 'utf8',
      })
        .trim()
        .split('\n')[1]
        .trim()
        .split(/\s+/)
        .map((v, i) => (i === 0 ? v : Number(v))) as [string, number, number, number]
      const near = (ours: number, theirs: number, what: string) =>
        t.ok(Math.abs(ours - theirs) <= 0.01 * size, `${what}: agent ${ours}, df ${theirs}`)
      near(status.disk.sizeBytes, size, 'size')
      near(status.disk.usedBytes, used, 'used')
      near(status.disk.availBytes, avail, 'available')
      t.ok(
        Math.abs(status.disk.usedPercent - (100 * used) / (used + avail)) < 1,
        `used percent ${status.disk.usedPercent}`,
      )
    })

    await t.test('image counts and bytes by state match what was created', async (t) => {
      const metrics = await (await fetch(`${agent.url}/metrics`)).text()
      t.equal(metricValue(metrics, 'gpuhost_docker_images', 'state="unused"'), 3)
      t.equal(metricValue(metrics, 'gpuhost_docker_images', 'state="dangling"'), 1)
      t.equal(metricValue(metrics, 'gpuhost_docker_images', 'state="in_use"'), 0)
      t.equal(
        metricValue(metrics, 'gpuhost_docker_images_size_bytes', 'state="unused"'),
        imageSize(dockerd, a) + imageSize(dockerd, b) + imageSize(dockerd, c),
      )
      t.equal(metricValue(metrics, 'gpuhost_docker_images_size_bytes', 'state="dangling"'), imageSize(dockerd, old))
      t.ok(imageSize(dockerd, a) >= 6 * MiB, 'sizes are the real layer sizes')
      t.equal(metricValue(metrics, 'gpuhost_collector_success', 'collector="images"'), 1)
      t.equal(metricValue(metrics, 'gpuhost_collector_success', 'collector="disk"'), 1)
      t.equal(metricValue(metrics, 'gpuhost_filesystem_size_bytes', `mountpoint="${dockerd.mountpoint}"`) > 0, true)
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' })
      t.equal(lint.status, 0, `promtool check metrics on the live output: ${lint.stdout}${lint.stderr}`)
      const facts = await imageFacts(agent, a)
      t.same(facts.repoTags, ['test/a:1'])
      t.same(
        facts.cudaEnv,
        { CUDA_VERSION: '12.2.0', NVIDIA_REQUIRE_CUDA: 'cuda>=12.2' },
        'CUDA env read from the image config',
      )
      t.equal(facts.lastUsed, null, 'never used yet')
      t.same((await imageFacts(agent, b)).cudaEnv, {}, 'no CUDA env: empty')
      t.equal((await imageFacts(agent, old)).dangling, true)
    })

    await t.test('an image here before the agent started is first seen when Docker last tagged it', async (t) => {
      const tagTime = JSON.parse(dockerd.docker(['image', 'inspect', b, '--format', '{{json .Metadata.LastTagTime}}']))
      t.ok(Date.parse(tagTime) > 0, `Docker reports a tag time (${tagTime})`)
      const facts = await imageFacts(agent, b)
      t.equal(facts.firstSeen, new Date(tagTime).toISOString(), 'first seen is that time, not the agent start')
    })

    let lastUsedA = ''
    let firstSeenA = ''
    await t.test('a container moves its image to in use and sets last used', async (t) => {
      const before = Date.now()
      // Test images hold no program to run: a created container is a use as much as a started one.
      const container = createContainer(dockerd, 'test/a:1', 'uses-a')
      await waitFor('image a in use', async () => (await imageFacts(agent, a))?.containers.length === 1, 20_000)
      const facts = await imageFacts(agent, a)
      t.equal(facts.containers[0].name, 'uses-a')
      t.ok(Date.parse(facts.lastUsed) >= before - 1000, `last used ${facts.lastUsed} is after the container was made`)
      const status = await getJson(`${agent.url}/v1/status`)
      t.equal(status.images.inUse, 1)
      t.equal(status.images.inUseSizeBytes, imageSize(dockerd, a))
      // Removed again, the image is unused but keeps its last-used time.
      dockerd.docker(['rm', '-f', container])
      await waitFor('image a unused again', async () => (await imageFacts(agent, a))?.containers.length === 0, 20_000)
      const after = await imageFacts(agent, a)
      t.ok(Date.parse(after.lastUsed) >= Date.parse(facts.lastUsed), 'last used kept after the container is gone')
      lastUsedA = after.lastUsed
      firstSeenA = after.firstSeen
    })

    await t.test('last used and first seen survive an agent restart', async (t) => {
      t.equal((await agent.stop()).code, 0)
      // Owned by the whole test, not this step: it runs on into the next one.
      agent = await startAgent(
        top,
        { docker: { socket: dockerd.socket }, stateDir, tokenFile: null },
        { waitReady: true },
      )
      const facts = await imageFacts(agent, a)
      t.equal(facts.lastUsed, lastUsedA)
      t.equal(facts.firstSeen, firstSeenA)
      t.equal((await imageFacts(agent, b)).lastUsed, null, 'an image never used stays never used')
    })

    await t.test('a one-shot snapshot beside the agent reads the same durable record', async (t) => {
      const config = parseConfig(agentConfigSchema, { docker: { socket: dockerd.socket }, stateDir, tokenFile: null })
      const snap = await takeSnapshotOnce(config, pino({ level: 'silent' }))
      t.equal(snap.docker.reachable, true)
      t.same([snap.collectors.images?.success, snap.collectors.disk?.success], [true, true])
      t.equal(snap.disk?.mountpoint, dockerd.mountpoint)
      t.equal(snap.images?.length, 4)
      const facts = snap.images!.find((i) => i.id === a)!
      t.equal(facts.lastUsed, lastUsedA)
      t.equal(facts.firstSeen, firstSeenA)
      t.same(facts.cudaEnv, { CUDA_VERSION: '12.2.0', NVIDIA_REQUIRE_CUDA: 'cuda>=12.2' })
    })

    await t.test('dockerd killed and restarted: the agent serves on and recovers', async (t) => {
      await dockerd.kill()
      t.teardown(() => {
        if (t.passing() === false) t.comment(agent.logs())
      })
      await waitFor(
        'images collector failing',
        async () => {
          const s = await getJson(`${agent.url}/v1/status`)
          return s.collectors.images?.success === false && s.docker.reachable === false
        },
        30_000,
      )
      t.equal((await fetch(`${agent.url}/healthz`)).status, 200, 'still serving')
      const metrics = await (await fetch(`${agent.url}/metrics`)).text()
      t.equal(
        metricValue(metrics, 'gpuhost_collector_success', 'collector="images"'),
        0,
        'the scrape reports the collector down',
      )
      t.equal(
        metricValue(metrics, 'gpuhost_docker_images', 'state="unused"'),
        3,
        'the last known images are still reported',
      )
      t.ok(metrics.includes('gpuhost_filesystem_size_bytes{'), 'disk is still measured from the remembered root dir')

      await dockerd.restart()
      const restarted = Date.now()
      await waitFor(
        'images collector recovered',
        async () => {
          const s = await getJson(`${agent.url}/v1/status`)
          return s.collectors.images?.success === true && s.docker.reachable === true
        },
        60_000,
        250,
      )
      t.pass('the images collector and Docker are reported healthy again')
      t.comment(`recovered ${Date.now() - restarted} ms after dockerd answered`)
      // The event stream is back: a new container is noticed without waiting for the periodic refresh.
      createContainer(dockerd, 'test/b:1', 'uses-b')
      await waitFor('image b in use', async () => (await imageFacts(agent, b))?.containers.length === 1, 20_000)
      t.pass('events resumed after the restart')
      t.notMatch(agent.logs(), /"level":(50|60)/, 'no error or fatal logged')
    })
  })
}

t.test('a one-shot snapshot without Docker says so instead of throwing', async (t) => {
  const dir = testDir(t)
  const config = parseConfig(agentConfigSchema, {
    docker: { socket: join(dir.path, 'no.sock') },
    stateDir: join(dir.path, 'state'),
    tokenFile: null,
  })
  const snap = await takeSnapshotOnce(config, pino({ level: 'silent' }))
  t.equal(snap.docker.reachable, false)
  t.match(snap.docker.reason, /ENOENT/)
  t.equal(snap.images, null)
  t.equal(snap.collectors.images?.success, false)
  t.equal(snap.collectors.disk?.success, false)
  t.match(snap.collectors.disk?.error, /set disk\.path/)
})

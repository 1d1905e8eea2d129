// Inventory, prune and prewarm, written once and run on both runtimes (a tap matrix): a private
// dockerd and a private containerd (CRI plugin, namespace k8s.io) on their own loop disks, with
// images pushed into a loopback registry and pulled by each engine's CLI. On each: the agent lists
// the images with their sizes, shared bytes and CUDA env, marks the one a created (never started)
// container uses, prunes least recently used to the low watermark without touching the in-use
// or pinned ones and frees what `du` says it frees, and prewarms through a mirror behind the CUDA
// gate.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { integrationRequired } from '../harness/services.js'
import { ENGINE_KINDS, engineMissing, startEngine } from '../harness/engines.js'
import { pushOciImage, randomLayer } from '../harness/oci-image.js'
import { startRegistry } from '../harness/registry.js'
import { fakeNvidiaSmi } from '../harness/nvidia-smi.js'
import { post, runCli, startAgent, testDir } from '../harness/agent.js'
import { stringify } from 'yaml'
import { waitFor } from '../harness/ports.js'
import { seedUsage, daysAgo } from '../support/prune-fixtures.js'
import { readFilesystem } from '../../src/inventory/disk.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { createRuntime } from '../../src/runtime/create.js'

const MiB = 1024 * 1024

/** bytes under `dir` as du counts them (allocated blocks, each hard link once) */
function du(dir: string): number {
  return Number(execFileSync('du', ['-s', '-B1', dir], { encoding: 'utf8' }).split('\t')[0])
}

for (const kind of ENGINE_KINDS) {
  const missing = engineMissing(kind)
  if (missing && integrationRequired()) t.fail(`the ${kind} suite cannot run: ${missing}; see .ci/run`)
  t.test(kind, { skip: missing ? `${kind}: ${missing}` : false }, async (t) => {
    const started = Date.now()
    const upstream = await startRegistry(t)
    const mirror = await startRegistry(t, { proxyOf: upstream.url })
    const engine = await startEngine(t, kind, { diskMiB: 256 })
    engine.trustRegistry(upstream.host)
    engine.trustRegistry(mirror.host)
    const smi = fakeNvidiaSmi(t, { fixture: 'xml/tesla-t4_driver-515.105.01_dtd-v11.xml' })

    const shared = randomLayer('shared', 4 * MiB)
    const used = await pushOciImage(upstream, {
      repoTag: 'team/used:1',
      sizeBytes: 2 * MiB,
      env: { CUDA_VERSION: '12.2.0', NVIDIA_REQUIRE_CUDA: 'cuda>=12.2' },
    })
    const b1 = await pushOciImage(upstream, { repoTag: 'team/b:1', sizeBytes: 1 * MiB, sharedLayer: shared })
    const b2 = await pushOciImage(upstream, { repoTag: 'team/b:2', sizeBytes: 1 * MiB, sharedLayer: shared })
    const old = await pushOciImage(upstream, { repoTag: 'team/old:1', sizeBytes: 8 * MiB })
    const older = await pushOciImage(upstream, { repoTag: 'team/older:1', sizeBytes: 8 * MiB })
    const recent = await pushOciImage(upstream, { repoTag: 'team/recent:1', sizeBytes: 8 * MiB })
    const keep = await pushOciImage(upstream, { repoTag: 'team/keep:1', sizeBytes: 8 * MiB })
    const warm = await pushOciImage(upstream, { repoTag: 'team/warm:1', sizeBytes: 2 * MiB })
    const cuda12 = await pushOciImage(upstream, {
      repoTag: 'team/cuda12:1',
      sizeBytes: 2 * MiB,
      env: { CUDA_VERSION: '12.2.0', NVIDIA_REQUIRE_CUDA: 'cuda>=12.2' },
    })
    for (const image of [used, b1, b2, old, older, recent, keep]) engine.pull(image.ref)
    engine.createContainer(used.ref, 'user')
    // containerd: the kubelet's GC and gpuhost leave a pinned image; on Docker a protect glob does.
    if (engine.pin) engine.pin(keep.ref)

    const state = join(testDir(t).path, 'state')
    seedUsage(state, {
      [older.id]: { firstSeen: daysAgo(30), lastUsed: daysAgo(9) },
      [old.id]: { firstSeen: daysAgo(30), lastUsed: daysAgo(5) },
      [keep.id]: { firstSeen: daysAgo(30), lastUsed: null },
      [recent.id]: { firstSeen: daysAgo(30), lastUsed: daysAgo(1) },
      [b1.id]: { firstSeen: daysAgo(30), lastUsed: daysAgo(0.5) },
      [b2.id]: { firstSeen: daysAgo(30), lastUsed: daysAgo(0.5) },
      [used.id]: { firstSeen: daysAgo(30), lastUsed: daysAgo(20) },
    })
    const agent = await startAgent(
      t,
      {
        ...engine.agentConfig,
        stateDir: state,
        gpu: { nvidiaSmi: smi, timeoutSeconds: 5 },
        prune: {
          highPercent: 100,
          lowPercent: 1,
          schedule: null,
          minAgeSeconds: 0,
          protect: kind === 'docker' ? [`${upstream.host}/team/keep:*`] : [],
        },
        // wanted: kept by prune on both runtimes, and pinned for the kubelet on containerd
        prewarm: {
          images: [recent.ref],
          schedule: null,
          mirrors: { [upstream.host]: [mirror.host] },
          retries: 1,
          concurrency: 1,
        },
      },
      { waitReady: true },
    )
    const images = async () => (await (await fetch(`${agent.url}/v1/images`)).json()).images as any[]
    const byId = async () => new Map((await images()).map((i) => [i.id, i]))

    await t.test('inventory: images, sizes, shared layers, in use, CUDA env, the disk', async (t) => {
      const status = await (await fetch(`${agent.url}/v1/status`)).json()
      t.equal(status.disk.mountpoint, engine.mountpoint, 'the disk is the engine data filesystem')
      const list = await byId()
      for (const image of [used, b1, b2, old, older, recent, keep]) t.ok(list.has(image.id), `lists ${image.ref}`)
      t.same(
        list.get(used.id).containers.map((c: { name: string }) => c.name),
        ['user'],
        'the created, never started container uses its image',
      )
      t.equal(list.get(used.id).cudaEnv?.NVIDIA_REQUIRE_CUDA, 'cuda>=12.2', 'the CUDA env from the image config')
      t.ok(list.get(old.id).sizeBytes >= 8 * MiB, `an 8 MiB image is ${list.get(old.id).sizeBytes} bytes`)
      // dockerd's image list leaves SharedSize at -1 (it is read from /system/df when a prune plans)
      if (kind === 'containerd') {
        t.ok(
          list.get(b1.id).sharedSizeBytes >= 4 * MiB && list.get(b2.id).sharedSizeBytes >= 4 * MiB,
          `the shared 4 MiB layer counts as shared: ${list.get(b1.id).sharedSizeBytes}`,
        )
        t.ok(list.get(old.id).sharedSizeBytes < MiB, 'an image sharing nothing has (almost) no shared bytes')
      }
      const metrics = await (await fetch(`${agent.url}/metrics`)).text()
      t.match(metrics, /gpuhost_docker_images\{state="in_use"\} 1\n/, 'one image in use')
      t.match(metrics, new RegExp(`gpuhost_runtime_info\\{kind="${kind}",version="[^"]+"\\} 1\\n`), 'the runtime')
      t.equal(status.docker.kind, kind)
    })

    if (engine.pinnedNames) {
      await t.test('the wanted image is pinned for the kubelet; the one pinned by others stays pinned', async (t) => {
        await waitFor('the wanted pin', () => engine.pinnedNames!().includes(recent.ref), 30_000, 200)
        t.ok(engine.pinnedNames!().includes(keep.ref), 'the externally pinned image keeps its pin')
        const list = await byId()
        t.equal(list.get(recent.id).pinned, true, 'the inventory says pinned')
        t.equal(list.get(keep.id).pinned, true)
        t.notOk(list.get(old.id).pinned, 'others are not')
      })
    }

    await t.test('check --json: verdicts from the image config env, the kubelet thresholds and the race', async (t) => {
      const dir = testDir(t)
      const kubelet = dir.file('kubelet.yaml', 'imageGCHighThresholdPercent: 85\nimageGCLowThresholdPercent: 80\n')
      const engineRuntime = (engine.agentConfig.runtime ?? {}) as object
      const file = dir.file(
        'agent.yaml',
        stringify({
          ...engine.agentConfig,
          runtime: { ...engineRuntime, kubeletConfig: kubelet },
          gpu: { nvidiaSmi: smi, timeoutSeconds: 5 },
          prune: { highPercent: 90, lowPercent: 80 },
          stateDir: join(dir.path, 'state'),
          tokenFile: null,
        }),
      )
      const r = runCli(['check', '--json', '--config', file])
      const report = JSON.parse(r.stdout)
      t.equal(report.docker.reachable, true, r.stderr)
      const verdict = report.images.find((i: { ref: string }) => i.ref === used.ref)
      t.equal(verdict?.compatible, false, 'CUDA 12.2 on a CUDA 11.7 driver: incompatible, from the config env')
      t.match(report.kubelet, { found: true, thresholds: { highPercent: 85, lowPercent: 80 } })
      t.match(report.kubelet.warnings.join('\n'), /prune\.highPercent 90 is not below the kubelet's .* 85/)
    })

    await t.test('prune: least recently used to the low watermark; never in use, never pinned', async (t) => {
      const disk = await readFilesystem(engine.mountpoint)
      // free one and a half of the 8 MiB images as the runtime counts them (containerd: blob and
      // snapshot): `older` and `old` are the least recently used
      const need = 1.5 * (await byId()).get(old.id).sizeBytes
      const target = Math.floor(((disk.usedBytes - need) / (disk.usedBytes + disk.availBytes)) * 10000) / 100
      const duBefore = du(engine.mountpoint)
      const res = await post(`${agent.url}/v1/prune`, agent.token, { targetPercent: target })
      t.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500))
      const removed = res.body.removed.map((r: { id: string }) => r.id)
      t.same(removed.slice(0, 2), [older.id, old.id], 'the two least recently used went first')
      t.notOk(removed.includes(used.id), 'the in-use image stayed')
      t.notOk(removed.includes(keep.id), kind === 'containerd' ? 'the pinned image stayed' : 'the protected one stayed')
      await waitFor(
        'the inventory after the prune',
        async () => {
          const now = await byId()
          return !now.has(older.id) && !now.has(old.id)
        },
        30_000,
        200,
      )
      const list = await byId()
      t.ok(list.has(used.id) && list.has(keep.id), 'both are still listed')
      t.ok(list.has(recent.id), 'the recently used one stayed')
      const freedDu = duBefore - du(engine.mountpoint)
      const expected = res.body.removed.reduce(
        (s: number, r: { expectedFreedBytes: number }) => s + r.expectedFreedBytes,
        0,
      )
      t.comment(`${kind}: prune expected ${expected} bytes, du says ${freedDu} freed, df says ${res.body.freedBytes}`)
      t.ok(freedDu >= 0.9 * expected && freedDu <= 1.5 * expected + MiB, `du: ${freedDu} for ${expected} expected`)
    })

    await t.test('prewarm: through the mirror under the original name; the CUDA gate skips', async (t) => {
      const res = await post(`${agent.url}/v1/prewarm`, agent.token, { images: [warm.ref, cuda12.ref] })
      t.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500))
      const byRef = Object.fromEntries(res.body.results.map((r: { ref: string }) => [r.ref, r]))
      t.equal(byRef[warm.ref].status, 'pulled', JSON.stringify(byRef[warm.ref]))
      t.equal(byRef[warm.ref].source, mirror.host, 'came through the mirror')
      t.equal(byRef[cuda12.ref].status, 'skipped', 'a T4 on driver 515 cannot run CUDA 12.2')
      const names = engine.imageNames()
      t.ok(
        names.some((n) => n.endsWith(warm.ref)),
        'present under its original name',
      )
      t.notOk(
        names.some((n) => n.includes(mirror.host)),
        "the mirror's name is gone",
      )
      await waitFor('the prewarmed image in the inventory', async () => (await byId()).has(warm.id), 30_000, 200)
    })
    await t.test("a container made while the agent runs: the runtime's event marks its image used now", async (t) => {
      const before = Date.now()
      engine.createContainer(b2.ref, 'late')
      await waitFor('the create event', async () => (await byId()).get(b2.id)?.containers.length === 1, 30_000, 200)
      const image = (await byId()).get(b2.id)
      t.same(
        image.containers.map((c: { name: string }) => c.name),
        ['late'],
      )
      t.ok(Date.parse(image.lastUsed) >= before - 2000, `last used ${image.lastUsed}, from the event`)
    })

    await t.test('shared layers: removing one of two images that share a layer frees its own bytes only', async (t) => {
      const runtime = createRuntime(
        parseConfig(agentConfigSchema, { ...engine.agentConfig, stateDir: join(testDir(t).path, 'state') }),
      )
      const size = (await byId()).get(b1.id).sizeBytes
      const sharedBytes = (await runtime.sharedSizes()).get(b1.id)!
      t.ok(sharedBytes >= 4 * MiB, `the runtime counts ${sharedBytes} bytes of it as shared`)
      const before = du(engine.mountpoint)
      t.same(await runtime.removeImage({ id: b1.id, refs: [b1.ref] }), { outcome: 'removed' })
      const freed = before - du(engine.mountpoint)
      const expected = size - sharedBytes
      t.comment(`${kind}: one of two sharing images: expected ${expected} bytes freed, du says ${freed}`)
      t.ok(Math.abs(freed - expected) <= 256 * 1024, `du: ${freed} freed for ${expected} expected`)
      t.ok(
        engine.imageNames().some((n) => n.endsWith(b2.ref)),
        'the other image, and the layer they share, stay',
      )
      if (engine.pinnedNames) {
        // released from the wanted set: gpuhost takes off the pin it set, and only that one
        t.same(await runtime.pinWanted!([]), { pinned: [], unpinned: [recent.id] })
        t.notOk(engine.pinnedNames().includes(recent.ref), 'the released image is unpinned')
        t.ok(engine.pinnedNames().includes(keep.ref), 'a pin gpuhost did not set stays')
      }
    })
    t.comment(`${kind} suite: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  })
}

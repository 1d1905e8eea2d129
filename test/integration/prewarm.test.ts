// Prewarm against real parts: a private dockerd on a small loop disk, an upstream registry, a
// pull-through mirror of it, and a stand-in nvidia-smi that prints a real T4 capture (driver
// 515.105.01, CUDA 11.7).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { statfsSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { requireServices } from '../harness/services.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { startRegistry, type PrivateRegistry } from '../harness/registry.js'
import { makeImage, pushImage } from '../harness/images.js'
import { fakeNvidiaSmi } from '../harness/nvidia-smi.js'
import { post, runCli, runCliAsync, startAgent, testDir } from '../harness/agent.js'
import { waitFor } from '../harness/ports.js'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { pino } from 'pino'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { EventBus } from '../../src/core/events.js'
import { JobRunner } from '../../src/core/job-runner.js'
import { runPrewarm } from '../../src/prewarm/executor.js'
import { buildPrewarmDeps } from '../../src/prewarm/setup.js'
import { createRuntime } from '../../src/runtime/create.js'
import { PullsInFlight } from '../../src/core/pulls-in-flight.js'
import { checkImageCompat } from '../../src/compat/check.js'
import type { GpuFacts } from '../../src/core/snapshot.js'

const readGpu = async (): Promise<GpuFacts> => ({ available: false, reason: 'not needed here', gpus: [] })

const MiB = 1024 * 1024

/** builds an image, pushes it to the registry and leaves nothing of it in the daemon */
function publish(
  dockerd: PrivateDockerd,
  registry: PrivateRegistry,
  name: string,
  sizeBytes: number,
  env: Record<string, string> = {},
): string {
  makeImage(dockerd, { ref: name, sizeBytes, env })
  const remote = pushImage(dockerd, name, registry.host)
  dockerd.docker(['rmi', name])
  return remote
}

function localTags(dockerd: PrivateDockerd): string[] {
  return dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']).split('\n').filter(Boolean)
}

async function layerDigests(registry: PrivateRegistry, repo: string, tag: string): Promise<string[]> {
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  })
  return ((await res.json()) as { layers: { digest: string }[] }).layers.map((l) => l.digest)
}

/** a GET of the blob in a registry's text log */
function blobFetched(log: string, digest: string): boolean {
  return log.split('\n').some((line) => line.includes(`blobs/${digest}`) && /method=GET/.test(line))
}

if (requireServices(t, ['dockerd', 'docker', 'docker-registry', 'mkfs'])) {
  t.test('prewarm', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 200 })
    const upstream = await startRegistry(t)
    const mirror = await startRegistry(t, { proxyOf: upstream.url })
    const smi = fakeNvidiaSmi(t, { fixture: 'xml/tesla-t4_driver-515.105.01_dtd-v11.xml' })
    const small = publish(dockerd, upstream, 'team/small:1', 2 * MiB)
    const cuda11 = publish(dockerd, upstream, 'team/cuda11:1', 2 * MiB, { CUDA_VERSION: '11.2.2' })
    const cuda12 = publish(dockerd, upstream, 'team/cuda12:1', 2 * MiB, {
      CUDA_VERSION: '12.2.0',
      NVIDIA_REQUIRE_CUDA: 'cuda>=12.2',
    })
    const later = publish(dockerd, upstream, 'team/later:1', 2 * MiB)
    const big = publish(dockerd, upstream, 'team/big:1', 12 * MiB)
    const pinned = publish(dockerd, upstream, 'team/pinned:1', 1 * MiB)
    const missing = `${upstream.host}/team/missing:1`
    t.same(localTags(dockerd), [], 'nothing local before the prewarm')

    const dir = testDir(t)
    const config = {
      docker: { socket: dockerd.socket },
      gpu: { nvidiaSmi: smi, timeoutSeconds: 5 },
      prune: { schedule: null },
      prewarm: { schedule: null, mirrors: { [upstream.host]: [mirror.host] }, retries: 1, concurrency: 2 },
    }
    const configFile = dir.file(
      'agent.yaml',
      stringify({ ...config, stateDir: join(dir.path, 'state'), tokenFile: null }),
    )

    t.test(
      'through the mirror, under the original names; the driver-incompatible image is never downloaded',
      async (t) => {
        const agent = await startAgent(t, config)
        const cuda12Layers = await layerDigests(upstream, 'team/cuda12', '1')
        const upstreamLogBefore = upstream.log().length
        const mirrorLogBefore = mirror.log().length
        const res = await post(`${agent.url}/v1/prewarm`, agent.token, { images: [small, cuda11, cuda12, missing] })
        t.equal(res.status, 200, JSON.stringify(res.body))
        const byRef = Object.fromEntries(res.body.results.map((r: { ref: string }) => [r.ref, r]))
        t.equal(byRef[small].status, 'pulled')
        t.equal(byRef[small].source, mirror.host, 'came through the mirror')
        t.ok(byRef[small].durationSeconds > 0)
        t.equal(byRef[cuda11].status, 'pulled', 'CUDA 11.2 runs on a CUDA 11.7 driver')
        t.equal(byRef[cuda12].status, 'skipped')
        t.match(byRef[cuda12].reason, /^the host's driver cannot run it: .*cuda>=12\.2/)
        t.equal(byRef[missing].status, 'failed')
        t.match(byRef[missing].reason, /team\/missing: not found/)

        const tags = localTags(dockerd)
        t.ok(tags.includes(small) && tags.includes(cuda11), 'present under their original names')
        t.notOk(
          tags.some((x) => x.startsWith(mirror.host)),
          "the mirror's names are gone",
        )
        t.notOk(tags.includes(cuda12), 'the incompatible image was not pulled')
        const fetched = upstream.log().slice(upstreamLogBefore) + mirror.log().slice(mirrorLogBefore)
        for (const digest of cuda12Layers)
          t.notOk(
            blobFetched(fetched, digest),
            `no registry served the incompatible image's layer ${digest.slice(0, 19)}`,
          )
        t.match(fetched, /team\/cuda12\/manifests/, 'its manifest was read')

        const again = await post(`${agent.url}/v1/prewarm`, agent.token, { images: [small, cuda11] })
        t.same(
          again.body.results.map((r: { status: string }) => r.status),
          ['present', 'present'],
          'a second run finds them present by digest',
        )

        const metrics = await (await fetch(`${agent.url}/metrics`)).text()
        t.match(metrics, /gpuhost_prewarm_pulls_total\{result="pulled"\} 2/)
        t.match(metrics, /gpuhost_prewarm_pulls_total\{result="failed"\} 1/)
        t.match(metrics, /gpuhost_prewarm_pull_duration_seconds_count 2/)
        const status = await (await fetch(`${agent.url}/v1/status`)).json()
        t.equal(status.lastPrewarm.present, 2, 'status shows the last prewarm')

        const dry = await post(`${agent.url}/v1/prewarm`, agent.token, { images: [later], dryRun: true })
        t.equal(dry.body.dryRun, true)
        t.equal(dry.body.results[0].status, 'skipped')
        t.match(dry.body.results[0].reason, /^dry run: would pull \(not present locally\)/)
        t.equal(dry.body.plan[0].action, 'pull')
        t.notOk(localTags(dockerd).includes(later), 'a dry run pulls nothing')
        const afterDry = await (await fetch(`${agent.url}/v1/status`)).json()
        t.equal(afterDry.lastPrewarm.dryRun, true, 'a dry run is a prewarm run too: started and finished events')
        t.match(
          await (await fetch(`${agent.url}/metrics`)).text(),
          /gpuhost_prewarm_pulls_total\{result="skipped"\} 1\n/,
          'a dry run counts no pull results',
        )

        const bad = await post(`${agent.url}/v1/prewarm`, agent.token, { images: 'nope' })
        t.equal(bad.status, 400)
        t.match(bad.body.error, /images/)
        t.equal((await post(`${agent.url}/v1/prewarm`, 'wrong', {})).status, 401)
      },
    )

    t.test('with the mirror stopped, the pull falls back to the upstream registry (CLI, --json)', async (t) => {
      await mirror.stop()
      t.teardown(() => mirror.start())
      const r = runCli(['--json', 'prewarm', '--config', configFile, '--image', later])
      t.equal(r.code, 0, r.stderr)
      const report = JSON.parse(r.stdout)
      t.equal(report.results[0].status, 'pulled')
      t.equal(report.results[0].source, upstream.host)
      t.ok(localTags(dockerd).includes(later))
    })

    t.test('a missing image fails with a clear reason while the others succeed; exit 1', async (t) => {
      dockerd.docker(['rmi', later])
      const r = runCli(['--json', 'prewarm', '--config', configFile, '--image', missing, '--image', later])
      t.equal(r.code, 1)
      const [gone, ok] = JSON.parse(r.stdout).results
      t.equal(gone.status, 'failed')
      t.match(gone.reason, /not found/)
      t.equal(ok.status, 'pulled')
      const plain = runCli(['prewarm', '--config', configFile, '--image', missing])
      t.equal(plain.code, 1)
      t.match(
        plain.stdout,
        /FAILED +127\.0\.0\.1:\d+\/team\/missing:1: .*not found/,
        'plain lines when not on a terminal',
      )
    })

    t.test('a tag pinned by digest, through the mirror, ends up under its original tag', async (t) => {
      const res = await fetch(`${upstream.url}/v2/team/pinned/manifests/1`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      })
      const ref = `${pinned}@${res.headers.get('docker-content-digest')}`
      const r = runCli(['--json', 'prewarm', '--config', configFile, '--image', ref])
      t.equal(r.code, 0, r.stderr)
      const result = JSON.parse(r.stdout).results[0]
      t.equal(result.status, 'pulled')
      t.equal(result.source, mirror.host)
      const tags = localTags(dockerd)
      t.ok(tags.includes(pinned), 'tagged with the original name')
      t.notOk(tags.some((x) => x.startsWith(mirror.host)))
      const again = runCli(['--json', 'prewarm', '--config', configFile, '--image', ref])
      t.equal(JSON.parse(again.stdout).results[0].status, 'present')
    })

    t.test('a pull that would overfill the disk is not started', async (t) => {
      // Fill the loop disk to just under the 85 % watermark: the 12 MiB image (≈30 MiB by estimate) no longer fits.
      const fs = statfsSync(dockerd.mountpoint)
      const used = (fs.blocks - fs.bfree) * fs.bsize
      const fill = Math.floor(fs.blocks * fs.bsize * 0.8) - used
      const filler = join(dockerd.mountpoint, 'filler')
      execFileSync('fallocate', ['-l', String(fill), filler])
      t.teardown(() => unlinkSync(filler))
      const bigLayers = await layerDigests(upstream, 'team/big', '1')
      const upstreamBefore = upstream.log().length
      const mirrorBefore = mirror.log().length
      const dry = runCli(['--json', 'prewarm', '--config', configFile, '--image', big, '--dry-run'])
      t.equal(dry.code, 0, dry.stderr)
      t.equal(JSON.parse(dry.stdout).results[0].status, 'skipped')
      const r = runCli(['--json', 'prewarm', '--config', configFile, '--image', big])
      t.equal(r.code, 0, r.stderr)
      const result = JSON.parse(r.stdout).results[0]
      t.equal(result.status, 'skipped')
      t.match(result.reason, /the disk would reach \d+\.\d% after the pull .* over prune\.highPercent 85%/)
      t.notOk(localTags(dockerd).includes(big))
      const fetched = upstream.log().slice(upstreamBefore) + mirror.log().slice(mirrorBefore)
      for (const digest of bigLayers) t.notOk(blobFetched(fetched, digest), 'no layer of it was fetched')
    })

    t.test('a mirror that never answers: the attempt times out and the pull goes on to the upstream', async (t) => {
      const held = new Set<Socket>()
      const blackhole = createServer((socket) => {
        held.add(socket)
      }) // accepts and never answers
      await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', () => r()))
      t.teardown(
        () =>
          new Promise<void>((r) => {
            blackhole.close(() => r())
            for (const socket of held) socket.destroy()
          }),
      )
      const silent = `127.0.0.1:${(blackhole.address() as AddressInfo).port}`
      const cfg = dir.file(
        'blackhole.yaml',
        stringify({
          ...config,
          prewarm: { ...config.prewarm, mirrors: { [upstream.host]: [silent] }, attemptTimeoutSeconds: 2 },
        }),
      )
      dockerd.docker(['rmi', later])
      const r = await runCliAsync(['--json', 'prewarm', '--config', cfg, '--image', later])
      t.equal(r.code, 0, r.stderr)
      const result = JSON.parse(r.stdout).results[0]
      t.equal(result.status, 'pulled')
      t.equal(result.source, upstream.host)
    })

    t.test('the schedule starts a prewarm', async (t) => {
      const agent = await startAgent(t, {
        ...config,
        prewarm: { ...config.prewarm, schedule: '* * * * * *', images: [small] },
      })
      await waitFor(
        'a scheduled prewarm',
        async () => (await (await fetch(`${agent.url}/v1/status`)).json()).lastPrewarm?.trigger === 'schedule',
        10_000,
      )
      const status = await (await fetch(`${agent.url}/v1/status`)).json()
      t.equal(status.lastPrewarm.present, 1)
    })

    t.test('retries with backoff: a registry that comes back between attempts', async (t) => {
      const flaky = await startRegistry(t)
      const image = publish(dockerd, flaky, 'team/flaky:1', MiB)
      const cfg = parseConfig(agentConfigSchema, { ...config, prewarm: { ...config.prewarm, mirrors: {}, retries: 6 } })
      // The registry goes away after the plan has read the manifest, and comes back when the first attempt has failed.
      let failures = 0
      let restarted: Promise<void> | null = null
      const log = pino(
        { level: 'warn' },
        {
          write: (line: string) => {
            if (/pull attempt failed/.test(line) && ++failures === 1) restarted = flaky.start()
          },
        },
      )
      const deps = buildPrewarmDeps({
        config: cfg,
        log,
        bus: new EventBus(),
        runner: new JobRunner(),
        runtime: createRuntime(cfg),
        pulls: new PullsInFlight(),
        gpu: readGpu,
        evaluate: checkImageCompat,
      })
      t.teardown(() => deps.close())
      // The registry stops as soon as it has answered the plan's manifest read, before the pulls.
      const realInspect = deps.source.inspectRemote.bind(deps.source)
      deps.source.inspectRemote = async (ref) => {
        const remote = await realInspect(ref)
        await flaky.stop()
        return remote
      }
      const report = await runPrewarm({ ...deps, retryMinMs: 200 }, { images: [image], trigger: 'cli' })
      await restarted
      t.equal(report.results[0].status, 'pulled', report.results[0].reason)
      t.ok(failures >= 1, `${failures} attempt(s) failed before the pull succeeded`)
      t.ok(localTags(dockerd).includes(image))
    })

    t.test('a manifest list: the entry for this platform is read and pulled', async (t) => {
      const amd = publish(dockerd, upstream, 'team/multi-amd:1', MiB, { CUDA_VERSION: '11.2.2' })
      const other = publish(dockerd, upstream, 'team/multi-arm:1', MiB, { CUDA_VERSION: '12.4.0' })
      const list = `${upstream.host}/team/multi:1`
      const cli = testDir(t) // the docker CLI keeps manifest lists in its config dir: not the user's
      const docker = (args: string[]) =>
        execFileSync('docker', ['-H', dockerd.host, '--config', cli.path, ...args], { encoding: 'utf8' })
      docker(['manifest', 'create', '--insecure', list, amd, other])
      docker(['manifest', 'annotate', '--arch', 'arm64', '--variant', 'v8', list, other])
      docker(['manifest', 'push', '--insecure', list])
      const r = runCli(['--json', 'prewarm', '--config', configFile, '--image', list])
      t.equal(r.code, 0, r.stderr)
      const result = JSON.parse(r.stdout).results[0]
      t.equal(result.status, 'pulled', 'the amd64 entry (CUDA 11.2) was judged, not the arm64 one (CUDA 12.4)')
      t.match(dockerd.docker(['image', 'inspect', list, '--format', '{{json .Config.Env}}']), /CUDA_VERSION=11\.2\.2/)
      const again = runCli(['--json', 'prewarm', '--config', configFile, '--image', list])
      t.equal(JSON.parse(again.stdout).results[0].status, 'present')
    })

    t.test('check --image asks the registry (through the mirror) for an image not on the host', async (t) => {
      const r = runCli(['--json', 'check', '--config', configFile, '--image', cuda12])
      t.equal(r.code, 1, r.stderr)
      t.match(JSON.parse(r.stdout).images[0], {
        ref: cuda12,
        compatible: false,
        source: 'registry',
        requirement: /cuda>=12\.2/,
      })
    })

    t.test('Docker unreachable: exit 69', async (t) => {
      const cfg = dir.file('nodocker.yaml', stringify({ ...config, docker: { socket: join(dir.path, 'none.sock') } }))
      const r = runCli(['prewarm', '--config', cfg, '--image', small])
      t.equal(r.code, 69)
      t.match(r.stderr, /Docker is unreachable.*\n {2}no socket at \S+none\.sock: start Docker, or set docker\.socket/)
    })
  })
}

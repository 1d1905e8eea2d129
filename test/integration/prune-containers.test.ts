// Exited containers before images, against a private dockerd: an exited container past the age is
// removed (with its writable layer and log in the audit line), then the image it held is pruned;
// a running container, a labelled exited one and their images stay. A dry run shows both steps.
import t from 'tap'
import { auditLog } from '../support/audit-log.js'
import { requireServices } from '../harness/services.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { testDir } from '../harness/agent.js'
import { EventBus } from '../../src/core/events.js'
import { parseConfig, agentConfigSchema } from '../../src/config.js'
import { readFilesystem } from '../../src/inventory/disk.js'
import { runPrune } from '../../src/prune/executor.js'
import type { PruneDeps } from '../../src/prune/executor-deps.js'
import { runtimeFor } from '../support/runtime.js'
import { dockerClient, makeRunnableImage, readImageFacts } from '../support/docker-images.js'

const MiB = 1024 * 1024
const daysAgo = (d: number) => new Date(Date.now() - d * 86400_000).toISOString()
// Two hours from now: every container exited in this test is then past an hour.
const later = () => new Date(Date.now() + 2 * 3600_000)

function setup(dockerd: PrivateDockerd) {
  const { log, audit } = auditLog()
  const config = parseConfig(agentConfigSchema, {
    prune: { minAgeSeconds: 3600, containers: { exitedOlderThanSeconds: 3600 } },
  })
  const deps: PruneDeps = {
    runtime: runtimeFor(dockerd),
    measure: readFilesystem,
    bus: new EventBus(),
    log,
    now: later,
    policy: config.prune,
    pullsInFlight: () => [],
    sharedSizes: true,
  }
  const docker = dockerClient(dockerd)
  const prune = async (dryRun: boolean) =>
    runPrune(
      deps,
      {
        images: await readImageFacts(docker, () => ({ firstSeen: daysAgo(10), lastUsed: daysAgo(1) })),
        diskPath: dockerd.dataRoot,
      },
      // A target below anything reachable: every eligible image goes.
      { trigger: 'cli', dryRun, targetPercent: 1 },
    )
  return { audit, prune }
}

const names = (dockerd: PrivateDockerd) =>
  dockerd.docker(['ps', '-a', '--format', '{{.Names}}']).trim().split('\n').filter(Boolean).sort()
const tags = (dockerd: PrivateDockerd) =>
  dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']).trim().split('\n').filter(Boolean).sort()

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('exited containers past the age go first, then the images they held', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    for (const ref of ['old/exited:1', 'keep/exited:1', 'run/x:1']) makeRunnableImage(dockerd, ref, 8 * MiB)
    dockerd.docker(['run', '-d', '--network', 'none', '--name', 'runner', 'run/x:1'])
    dockerd.docker(['run', '--network', 'none', '--name', 'old-exit', 'old/exited:1', '0'])
    dockerd.docker([
      'run',
      '--network',
      'none',
      '--name',
      'kept-exit',
      '--label',
      'gpuhost.keep=1',
      'keep/exited:1',
      '0',
    ])
    // 1 MiB in the old container's writable layer, so its removal gives something back.
    dockerd.docker(['cp', testDir(t).file('extra', 'x'.repeat(MiB)), 'old-exit:/extra'])
    const { audit, prune } = setup(dockerd)

    const dry = await prune(true)
    t.same(
      dry.containers?.plan.map((c) => c.name),
      ['old-exit'],
      'the dry run names the container',
    )
    t.ok(dry.containers!.plan[0].sizeRwBytes >= MiB, 'with its writable layer')
    t.same(
      dry.containers?.kept.map((k) => [k.name, k.reason]),
      [['kept-exit', 'protected by label gpuhost.keep']],
    )
    t.same(
      dry.plan.map((p) => p.refs[0]),
      ['old/exited:1'],
      'and the image it held, eligible once it is gone',
    )
    t.same(names(dockerd), ['kept-exit', 'old-exit', 'runner'], 'a dry run removes nothing')

    const report = await prune(false)
    t.same(names(dockerd), ['kept-exit', 'runner'], 'the old exited container is gone')
    t.same(tags(dockerd), ['keep/exited:1', 'run/x:1'], 'then its image; the images containers hold stay')
    t.same(
      report.removed.map((p) => p.refs[0]),
      ['old/exited:1'],
    )
    t.ok(report.freedBytesByKind.containers >= MiB, 'containers freed, by kind')
    t.ok(report.freedBytesByKind.images >= 8 * MiB, 'images freed, by kind')
    const line = audit.find((a) => a.kind === 'container')
    t.match(line, { outcome: 'removed', name: 'old-exit', logBytes: Number, trigger: 'cli' })
    t.ok((line?.sizeRwBytes as number) >= MiB, 'the audit line says what its layer held')
  })
}

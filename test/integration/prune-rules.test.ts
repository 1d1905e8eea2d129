// The age rule on a private dockerd: with the disk far below the threshold, an image unused for
// longer than prune.maxUnusedSeconds is removed, and prune.include limits the rule to *pytorch*
// references: an equally old tensorflow image and a recently used pytorch image stay.
import t, { type Test } from 'tap'
import { auditLog } from '../support/audit-log.js'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { makeImage } from '../harness/images.js'
import { EventBus } from '../../src/core/events.js'
import { parseConfig, agentConfigSchema } from '../../src/config.js'
import { readFilesystem } from '../../src/inventory/disk.js'
import { runPrune } from '../../src/prune/executor.js'
import type { PruneDeps } from '../../src/prune/executor-deps.js'
import { runtimeFor } from '../support/runtime.js'
import { dockerClient, readImageFacts, type Times } from '../support/docker-images.js'

const MiB = 1024 * 1024
const daysAgo = (d: number) => new Date(Date.now() - d * 86400_000).toISOString()
const TIMES: Record<string, Times> = {
  'pytorch/pytorch:old': { firstSeen: daysAgo(90), lastUsed: daysAgo(40) },
  'tensorflow/tensorflow:old': { firstSeen: daysAgo(90), lastUsed: daysAgo(40) },
  'pytorch/pytorch:new': { firstSeen: daysAgo(90), lastUsed: daysAgo(1) },
}

async function setup(t: Test, policy: Record<string, unknown>) {
  const dockerd = await startDockerd(t, { diskMiB: 256 })
  for (const ref of Object.keys(TIMES)) makeImage(dockerd, { ref, sizeBytes: 4 * MiB })
  const { log, audit } = auditLog()
  const config = parseConfig(agentConfigSchema, { prune: policy })
  const deps: PruneDeps = {
    runtime: runtimeFor(dockerd),
    measure: readFilesystem,
    bus: new EventBus(),
    log,
    now: () => new Date(),
    policy: config.prune,
    pullsInFlight: () => [],
    sharedSizes: true,
  }
  const docker = dockerClient(dockerd)
  const prune = async (dryRun: boolean) =>
    runPrune(
      deps,
      { images: await readImageFacts(docker, (i) => TIMES[i.tags[0]]), diskPath: dockerd.dataRoot },
      { trigger: 'schedule', dryRun },
    )
  const tags = () => dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']).trim().split('\n').sort()
  return { dockerd, audit, deps, prune, tags }
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('an old unused pytorch image goes with the disk far below the threshold', async (t) => {
    const { audit, deps, prune, tags } = await setup(t, {
      maxUnusedSeconds: 30 * 86400,
      include: ['*pytorch*'],
    })
    const config = { prune: deps.policy }

    const dry = await prune(true)
    t.ok(dry.before!.usedPercent < config.prune.highPercent - 20, `disk at ${dry.before!.usedPercent} %`)
    t.equal(dry.needBytes, 0, 'the threshold asks for nothing')
    t.same(
      dry.plan.map((p) => [p.refs[0], p.rule]),
      [['pytorch/pytorch:old', 'max_unused']],
      'the dry run shows the age rule',
    )
    t.equal(dry.result, 'ok')

    const report = await prune(false)
    t.same(
      report.removed.map((p) => p.refs[0]),
      ['pytorch/pytorch:old'],
    )
    t.same(tags(), ['pytorch/pytorch:new', 'tensorflow/tensorflow:old'], 'outside the scope or used recently: kept')
    t.equal(report.result, 'ok')
    t.ok(report.freedBytesByKind.images >= 4 * MiB)
    t.match(
      audit.find((a) => a.outcome === 'removed'),
      { rule: 'max_unused', tags: ['pytorch/pytorch:old'], trigger: 'schedule' },
    )
  })

  t.test('maxImageBytes: the least recently used image goes until the images fit', async (t) => {
    // Three images of 4 MiB (unique); a 9 MiB budget: one must go, the disk far below the threshold.
    const { dockerd, audit, prune, tags } = await setup(t, { maxImageBytes: 9 * MiB })
    const report = await prune(false)
    t.same(
      report.removed.map((p) => p.rule),
      ['max_image_bytes'],
    )
    t.equal(report.needBytes, 0)
    t.equal(tags().length, 2)
    t.ok(tags().includes('pytorch/pytorch:new'), 'the recently used image stays')
    const sizes = tags().map((ref) => Number(dockerd.docker(['image', 'inspect', ref, '--format', '{{.Size}}'])))
    t.ok(sizes.reduce((a, b) => a + b, 0) <= 9 * MiB, 'within the budget')
    t.match(
      audit.find((a) => a.outcome === 'removed'),
      { rule: 'max_image_bytes' },
    )
  })
}

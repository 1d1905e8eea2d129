// A named deep schedule on a private dockerd, with the seed's rules: "Sunday: deep clean of pytorch
// images unused for 30 days". Its run removes the old pytorch image with the disk far below the
// threshold and the dangling anonymous volume, and keeps the tensorflow image, the named and the
// labelled volumes and the volume a stopped container refers to; a run with prune's own rules
// touches none of it. A prune that cannot reach its target says which kind holds the space.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { auditLog } from '../support/audit-log.js'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { createContainer, makeImage } from '../harness/images.js'
import { EventBus } from '../../src/core/events.js'
import { parseConfig, agentConfigSchema } from '../../src/config.js'
import { readFilesystem } from '../../src/inventory/disk.js'
import { runPrune } from '../../src/prune/executor.js'
import type { PruneDeps } from '../../src/prune/executor-deps.js'
import { rulesFor } from '../../src/prune/schedules.js'
import { runtimeFor } from '../support/runtime.js'
import { dockerClient, readImageFacts, type Times } from '../support/docker-images.js'

const MiB = 1024 * 1024
const daysAgo = (d: number) => new Date(Date.now() - d * 86400_000).toISOString()
const TIMES: Record<string, Times> = {
  'pytorch/pytorch:old': { firstSeen: daysAgo(90), lastUsed: daysAgo(40) },
  'tensorflow/tensorflow:old': { firstSeen: daysAgo(90), lastUsed: daysAgo(40) },
  'busybox:keep': { firstSeen: daysAgo(90), lastUsed: daysAgo(40) },
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('the seed’s Sunday deep clean, as a named schedule', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    for (const ref of Object.keys(TIMES)) makeImage(dockerd, { ref, sizeBytes: 4 * MiB })
    // Volumes: one Docker named itself (anonymous) with 3 MiB in it, one named, one anonymous with
    // the protecting label, one a stopped container refers to.
    const volume = (args: string[], fillBytes = 0) => {
      const name = dockerd.docker(['volume', 'create', ...args]).trim()
      const data = dockerd.docker(['volume', 'inspect', name, '--format', '{{.Mountpoint}}']).trim()
      if (fillBytes > 0) writeFileSync(join(data, 'blob'), randomBytes(fillBytes))
      return name
    }
    const anonymous = volume([], 3 * MiB)
    const named = volume(['pgdata'], MiB)
    const labelled = volume(['--label', 'gpuhost.keep'])
    const inUse = volume(['scratch'])
    const holder = dockerd.docker(['create', '--network', 'none', '-v', `${inUse}:/scratch`, 'busybox:keep']).trim()

    const config = parseConfig(agentConfigSchema, {
      prune: {
        volumes: { dangling: true, named: true, protectLabels: ['gpuhost.keep'] },
        schedules: [
          {
            name: 'sunday-deep',
            cron: '0 4 * * 0',
            deep: true,
            maxUnusedSeconds: 30 * 86400,
            include: ['*pytorch*'],
          },
        ],
      },
    })
    const { log, audit } = auditLog()
    const bus = new EventBus()
    const events: unknown[] = []
    const finished: unknown[] = []
    bus.subscribe((e) => {
      if (e.type === 'prune.image') events.push(e.data)
      if (e.type === 'prune.finished') finished.push(e.data)
    })
    const docker = dockerClient(dockerd)
    const prune = async (dryRun: boolean, schedule?: string, targetPercent?: number) => {
      const rules = rulesFor(config.prune, schedule)
      const deps: PruneDeps = {
        runtime: runtimeFor(dockerd),
        measure: readFilesystem,
        bus,
        log,
        now: () => new Date(),
        policy: rules.policy,
        pullsInFlight: () => [],
        sharedSizes: true,
      }
      const images = await readImageFacts(docker, (i) => TIMES[i.tags[0]])
      return runPrune(
        deps,
        { images, diskPath: dockerd.dataRoot },
        { trigger: 'schedule', dryRun, schedule: rules.schedule, deep: rules.deep, targetPercent },
      )
    }
    const tags = () => dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']).trim().split('\n').sort()
    const volumes = () => dockerd.docker(['volume', 'ls', '--quiet']).trim().split('\n').sort()

    const own = await prune(false)
    t.equal(own.result, 'nothing_to_do', 'prune’s own rules: below the threshold, nothing goes')
    t.equal(own.volumes, null, 'not a deep run: volumes are not looked at')
    t.equal(tags().length, 3)
    t.equal(volumes().length, 4)

    const dry = await prune(true, 'sunday-deep')
    t.same(
      dry.plan.map((p) => [p.refs[0], p.rule]),
      [['pytorch/pytorch:old', 'max_unused']],
      'the dry run shows the age rule in the schedule’s scope',
    )
    t.same(dry.volumes!.plan.map((v) => v.name).sort(), [anonymous, named].sort())
    t.same(
      dry.volumes!.kept.map((v) => [v.name, v.reason]),
      [[labelled, 'protected by label gpuhost.keep']],
    )
    t.equal(volumes().length, 4, 'a dry run removes nothing')

    const deep = await prune(false, 'sunday-deep')
    t.equal(deep.result, 'ok')
    t.same([deep.schedule, deep.deep], ['sunday-deep', true])
    t.same(
      tags(),
      ['busybox:keep', 'tensorflow/tensorflow:old'],
      'the old pytorch image went; tensorflow is out of scope',
    )
    t.same(volumes(), [inUse, labelled].sort(), 'dangling volumes went; the labelled one and the one in use stay')
    t.ok(deep.freedBytesByKind.volumes >= 4 * MiB, `volumes freed ${deep.freedBytesByKind.volumes} bytes`)
    t.ok(deep.freedBytesByKind.images >= 4 * MiB)
    t.match(
      audit.filter((a) => a.kind === 'volume').map((a) => [a.name, a.rule, a.outcome, a.schedule]),
      [
        [anonymous, 'volumes_dangling', 'removed', 'sunday-deep'],
        [named, 'volumes_dangling', 'removed', 'sunday-deep'],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    )
    t.match(events, [
      { outcome: 'removed', tags: ['pytorch/pytorch:old'], rule: 'max_unused', schedule: 'sunday-deep' },
    ])

    // Nothing left that may go: a target of 1 % cannot be reached, and the report says why.
    createContainer(dockerd, 'tensorflow/tensorflow:old')
    const short = await prune(false, undefined, 1)
    t.equal(short.result, 'not_enough')
    const held = new Map(short.heldBy!.map((h) => [h.kind, h.bytes]))
    t.ok(held.get('images_in_use')! >= 8 * MiB, `images in use hold ${held.get('images_in_use')} bytes`)
    t.match(finished.at(-1), { result: 'not_enough', heldBy: short.heldBy }, 'prune.finished carries it')
    t.ok(holder)
  })
}

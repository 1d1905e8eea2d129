// Prune on an ext4 whose blocks reserved for root have been used by root (dockerd writes as root):
// df then shows no space available and 100 %. The prune must go on until df itself shows the
// target, not stop at an estimate made from those numbers.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { statfsSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { requireServices } from '../harness/services.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { makeImage } from '../harness/images.js'
import { EventBus } from '../../src/core/events.js'
import { parseConfig, agentConfigSchema } from '../../src/config.js'
import { readFilesystem } from '../../src/inventory/disk.js'
import { runPrune } from '../../src/prune/executor.js'
import type { PruneDeps } from '../../src/prune/executor-deps.js'
import { runtimeFor } from '../support/runtime.js'
import { dockerClient, readImageFacts } from '../support/docker-images.js'

const MiB = 1024 * 1024
const SIZE = 10 * MiB
const TARGET = 85
const old = { firstSeen: new Date(Date.now() - 30 * 86400_000).toISOString(), lastUsed: null }

/** df's own figures for the filesystem: used, available to non-root users, and its percent column */
function df(path: string): { used: number; avail: number; pcent: number } {
  const out = execFileSync('df', ['-B1', '--output=used,avail,pcent', path], { encoding: 'utf8' })
  const line = out.trim().split('\n')[1]
  const [used, avail, pcent] = line.trim().split(/\s+/)
  return { used: Number(used), avail: Number(avail), pcent: Number(pcent.replace('%', '')) }
}

/** as root, writes until the disk refuses: all that non-root users had, and the reserve with it */
function fillAsRoot(dockerd: PrivateDockerd): void {
  spawnSync('dd', ['if=/dev/zero', `of=${join(dockerd.mountpoint, 'filler')}`, 'bs=1M', 'status=none'])
  spawnSync('sync')
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('with the reserve eaten by root, a prune frees until df shows the target and says ok', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 400, reservedPercent: 5 })
    for (let i = 0; i < 12; i++) makeImage(dockerd, { ref: `old/img:${i}`, sizeBytes: SIZE })
    fillAsRoot(dockerd)
    const before = df(dockerd.mountpoint)
    t.equal(before.avail, 0, 'nothing left for non-root users')
    t.equal(before.pcent, 100, 'df says 100 %')
    const fs = statfsSync(dockerd.mountpoint)
    const reserved = 0.05 * fs.blocks
    t.ok(fs.bfree < reserved / 2, `root has used most of the reserve (${fs.bfree} of ${Math.round(reserved)} left)`)

    const docker = dockerClient(dockerd)
    const prune = { minAgeSeconds: 0, keepPerRepository: 0, lowPercent: TARGET, highPercent: 95 }
    const config = parseConfig(agentConfigSchema, { prune })
    const deps: PruneDeps = {
      runtime: runtimeFor(dockerd),
      measure: readFilesystem,
      bus: new EventBus(),
      log: pino({ level: 'silent' }),
      now: () => new Date(),
      policy: config.prune,
      pullsInFlight: () => [],
      sharedSizes: true,
    }
    const images = await readImageFacts(docker, () => old)
    const report = await runPrune(deps, { images, diskPath: dockerd.dataRoot }, { trigger: 'cli', dryRun: false })

    const after = df(dockerd.mountpoint)
    const percent = (100 * after.used) / (after.used + after.avail)
    t.ok(percent <= TARGET, `df: ${percent.toFixed(2)} % used of what non-root users can use, target ${TARGET} %`)
    t.ok(after.pcent <= TARGET, `df's own column: ${after.pcent} %`)
    t.equal(report.result, 'ok', 'the run says ok')
    t.ok(report.enough, 'enough by the same definition')
    const byDf = Math.round((10000 * after.used) / (after.used + after.avail)) / 100
    t.equal(report.after?.usedPercent, byDf, 'the report and df agree')
    const removed = report.removed.length
    t.ok(removed < images.length, `only what was needed went (${removed} of ${images.length})`)
    t.notOk(
      report.kept.some((k) => report.removed.some((r) => r.id === k.id)),
      'no removed image is listed as kept',
    )
  })
}

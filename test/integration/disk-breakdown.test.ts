// Where the space is, against a private dockerd: the agent's breakdown (POST /v1/disk/breakdown,
// /v1/status, /metrics) equals what `docker system df` prints for the same daemon, within the
// CLI's own rounding (4 significant digits, decimal units), and a container log of a known size is
// reported at that size.
import t from 'tap'
import { statSync } from 'node:fs'
import { requireServices } from '../harness/services.js'
import { startDockerd, type PrivateDockerd } from '../harness/dockerd.js'
import { makeImage } from '../harness/images.js'
import { post, startAgent, testDir } from '../harness/agent.js'
import { makeLoggingImage, makeRunnableImage } from '../support/docker-images.js'
import { runtimeFor } from '../support/runtime.js'
import { pino } from 'pino'
import { SnapshotStore } from '../../src/core/snapshot.js'
import { DiskBreakdownCollector, LOG_CAP_ADVICE } from '../../src/inventory/disk-breakdown.js'

const MiB = 1024 * 1024

/** go-units HumanSize, as the docker CLI prints sizes: %.4g of the value in decimal units */
function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB']
  let size = bytes
  let i = 0
  while (size >= 1000 && i < units.length - 1) {
    size /= 1000
    i++
  }
  return `${Number(size.toPrecision(4))}${units[i]}`
}

function systemDf(dockerd: PrivateDockerd): Record<string, { Size: string; TotalCount: string }> {
  const lines = dockerd.docker(['system', 'df', '--format', 'json']).trim().split('\n')
  return Object.fromEntries(lines.map((l) => JSON.parse(l)).map((r) => [r.Type, r]))
}

/** a log of `lines` lines of 100 characters each, newline included */
const logText = (lines: number, mark: string) =>
  Array.from({ length: lines }, (_, n) => `${mark} ${String(n).padStart(6, '0')} `.padEnd(99, 'x') + '\n').join('')

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('the disk breakdown matches docker system df', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    makeImage(dockerd, { ref: 'plain/a:1', sizeBytes: 3 * MiB })
    makeRunnableImage(dockerd, 'run/x:1', 5 * MiB)
    const bigLog = logText(20_000, 'big')
    const smallLog = logText(500, 'small')
    makeLoggingImage(dockerd, 'log/big:1', bigLog)
    makeLoggingImage(dockerd, 'log/small:1', smallLog)

    // A running container, and a stopped one with a 2 MiB writable layer, committed as an image
    // that shares run/x:1's layer.
    dockerd.docker(['run', '-d', '--network', 'none', '--name', 'runner', '-v', 'used-vol:/data', 'run/x:1'])
    const stopped = dockerd.docker(['create', '--network', 'none', '--name', 'stopped', 'run/x:1']).trim()
    const extra = testDir(t).file('extra', 'x'.repeat(2 * MiB))
    dockerd.docker(['cp', extra, `${stopped}:/data/extra`])
    dockerd.docker(['commit', stopped, 'derived/x:1'])
    // A named volume takes the image's /data (5 MiB) when first mounted; its container gone, it dangles.
    dockerd.docker(['create', '--network', 'none', '--name', 'vol-maker', '-v', 'left-vol:/data', 'run/x:1'])
    dockerd.docker(['rm', 'vol-maker'])
    // Containers that print known logs and exit; the CLI waits for them.
    dockerd.docker(['run', '--network', 'none', '--name', 'big-logger', 'log/big:1'], { timeoutMs: 60_000 })
    dockerd.docker(['run', '--network', 'none', '--name', 'small-logger', 'log/small:1'], { timeoutMs: 60_000 })

    // The big log (about 3.4 MB) is over the warning size; the small one (about 85 kB) is not.
    const agent = await startAgent(
      t,
      { docker: { socket: dockerd.socket }, disk: { logWarnBytes: 1_000_000 } },
      { waitReady: true },
    )
    const unauthorized = await post(`${agent.url}/v1/disk/breakdown`, null)
    t.equal(unauthorized.status, 401, 'measuring on demand needs the token')
    const res = await post(`${agent.url}/v1/disk/breakdown`, agent.token)
    t.equal(res.status, 200, JSON.stringify(res.body))
    const b = res.body
    const df = systemDf(dockerd)

    t.test('each kind matches docker system df', async (t) => {
      t.equal(humanSize(b.imagesBytes), df.Images.Size, 'images: every layer once')
      t.equal(b.bytes.images_unique + b.bytes.images_shared, b.imagesBytes, 'unique and shared add up')
      t.ok(b.bytes.images_shared >= 5 * MiB, 'run/x:1 and derived/x:1 share its layer')
      t.equal(humanSize(b.bytes.containers_running + b.bytes.containers_stopped), df.Containers.Size)
      t.ok(b.bytes.containers_stopped >= 2 * MiB, 'the stopped container keeps its writable layer')
      t.equal(humanSize(b.bytes.volumes_in_use + b.bytes.volumes_dangling), df['Local Volumes'].Size)
      t.ok(b.bytes.volumes_in_use >= 5 * MiB, 'the mounted volume is in use')
      t.ok(b.bytes.volumes_dangling >= 5 * MiB, 'the volume of the removed container dangles')
      t.equal(humanSize(b.bytes.build_cache), df['Build Cache'].Size)
      t.ok(b.durationSeconds >= 0)
    })

    t.test('a log of a known size is reported at that size, largest first', async (t) => {
      const logPath = (name: string) => dockerd.docker(['inspect', '-f', '{{.LogPath}}', name]).trim()
      // What the container wrote is in its log, whole.
      t.equal(dockerd.docker(['logs', 'big-logger'], { timeoutMs: 60_000 }).length, bigLog.length)
      const bigSize = statSync(logPath('big-logger')).size
      // json-file wraps each line as {"log":…,"stream":…,"time":…}: at least the text itself.
      t.ok(bigSize > bigLog.length, `${bigSize} bytes on disk for ${bigLog.length} bytes written`)
      t.same(
        b.topLogs.slice(0, 2).map((l: { name: string; logBytes: number }) => [l.name, l.logBytes]),
        [
          ['big-logger', bigSize],
          ['small-logger', statSync(logPath('small-logger')).size],
        ],
      )
      t.equal(logPath('stopped'), '', 'a container never started has no log file yet')
      t.notOk(
        b.topLogs.some((l: { name: string }) => l.name === 'stopped'),
        'and is not listed',
      )
      const all = ['runner', 'big-logger', 'small-logger'].map((n) => statSync(logPath(n)).size)
      t.equal(
        b.bytes.logs,
        all.reduce((s, n) => s + n, 0),
        'every container log counted',
      )
    })

    t.test('status and metrics carry the breakdown', async (t) => {
      const status = await (await fetch(`${agent.url}/v1/status`)).json()
      t.same(status.diskBreakdown.bytes, b.bytes)
      const metrics = await (await fetch(`${agent.url}/metrics`)).text()
      t.match(metrics, `gpuhost_docker_disk_bytes{kind="logs"} ${b.bytes.logs}\n`)
      t.match(metrics, `gpuhost_docker_disk_bytes{kind="images_shared"} ${b.bytes.images_shared}\n`)
      t.match(metrics, 'gpuhost_docker_large_logs 1\n')
      t.same(
        status.diskBreakdown.largeLogs.map((l: { name: string }) => l.name),
        ['big-logger'],
      )
    })

    t.test('a log over disk.logWarnBytes is announced once, with the options that would cap it', async (t) => {
      const store = new SnapshotStore()
      const warnings: { name: string; logBytes: number }[] = []
      const collector = new DiskBreakdownCollector(runtimeFor(dockerd), store, {
        topLogs: 5,
        now: () => new Date(),
        log: pino({ level: 'silent' }),
        logWarnBytes: 1_000_000,
        onLargeLog: (l) => warnings.push(l),
      })
      await collector.collect()
      await collector.collect()
      t.same(
        warnings.map((w) => w.name),
        ['big-logger'],
        'once, however many runs find it large',
      )
      t.equal(warnings[0].logBytes, store.get().diskBreakdown?.topLogs[0].logBytes)
      t.match(LOG_CAP_ADVICE, '--log-opt max-size=')
    })
  })
}

// GPU memory per container: real containers on a private dockerd; the stand-in nvidia-smi reports
// their pids in the A5000 capture's <processes> (derived: the captured pids 100477 and the second
// GPU's are replaced by the containers' pids, and the test runner's own pid, in no container, is
// added), and the collector maps each pid through /proc/PID/cgroup to its container.
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { GpuCollector, NvidiaSmiReader } from '../../src/gpu/collector.js'
import { SnapshotStore } from '../../src/core/snapshot.js'
import { createAgentMetrics } from '../../src/agent/metrics.js'
import { fakeNvidiaSmi, FIXTURES } from '../harness/nvidia-smi.js'
import { startDockerd } from '../harness/dockerd.js'
import { testDir } from '../harness/agent.js'
import { requireServices } from '../harness/services.js'
import { dockerClient, makeRunnableImage, readImageFacts } from '../support/docker-images.js'

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('pids nvidia-smi reports become containers, with their GPU memory', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    makeRunnableImage(dockerd, 'train/job:1')
    makeRunnableImage(dockerd, 'serve/api:2')
    const trainId = dockerd.docker(['run', '-d', '--network', 'none', '--name', 'trainer', 'train/job:1']).trim()
    const serveId = dockerd.docker(['run', '-d', '--network', 'none', '--name', 'server', 'serve/api:2']).trim()
    const pid = (id: string) => dockerd.docker(['inspect', '-f', '{{.State.Pid}}', id]).trim()

    const captured = readFileSync(join(FIXTURES, 'xml/rtx-a5000_x2_driver-590.44.01_dtd-v13.xml'), 'utf8')
    const [gpu0, gpu1] = captured.split('<gpu id="00000000:C1:00.0">')
    const host =
      `<process_info><pid>${process.pid}</pid><type>G</type>` + '<used_memory>100 MiB</used_memory></process_info>'
    const derived =
      gpu0.replace('<pid>100477</pid>', `<pid>${pid(trainId)}</pid>`).replace('</processes>', `${host}</processes>`) +
      '<gpu id="00000000:C1:00.0">' +
      gpu1.replace(/<pid>\d+<\/pid>/, `<pid>${pid(serveId)}</pid>`)
    const xml = join(testDir(t).path, 'a5000-with-container-pids.xml')
    writeFileSync(xml, derived)

    const store = new SnapshotStore()
    const reader = new NvidiaSmiReader({ nvidiaSmi: fakeNvidiaSmi(t, { fixture: xml }), timeoutMs: 5000 })
    const hiddenOnHost: number[] = []
    await new GpuCollector(reader, store, null, '/proc', (n) => hiddenOnHost.push(n)).collect()
    t.same(hiddenOnHost, [], "the host's /proc shows them: nothing to tell")
    // a /proc that shows none of them (systemd's ProtectProc=invisible leaves only the agent's own)
    const hidden: number[] = []
    const invisible = new SnapshotStore()
    await new GpuCollector(reader, invisible, null, testDir(t).path, (n) => hidden.push(n)).collect()
    t.same(hidden, [3], 'every listed process hidden: told, with the count')
    t.notOk(
      invisible.get().gpu.gpus.some((g) => g.processes?.some((p) => p.containerId)),
      'and no process is mapped to a container',
    )
    const [g0, g1] = store.get().gpu.gpus
    t.same(
      g0.processes,
      [
        { pid: Number(pid(trainId)), usedMemoryBytes: 22430 * 1024 * 1024, containerId: trainId },
        { pid: process.pid, usedMemoryBytes: 100 * 1024 * 1024 },
      ],
      'the test runner is in no container',
    )
    t.equal(g1.processes![0].containerId, serveId)

    const times = () => ({ firstSeen: new Date().toISOString(), lastUsed: null })
    store.set('images', await readImageFacts(dockerClient(dockerd), times))
    const { registry } = createAgentMetrics({ snapshot: () => store.get(), version: 'test' }, { processMetrics: false })
    const body = await registry.metrics()
    const series = body
      .split('\n')
      .filter((l) => l.startsWith('gpuhost_container_gpu_memory_bytes{'))
      .sort()
    const second = g1.processes![0].usedMemoryBytes
    t.same(series, [
      `gpuhost_container_gpu_memory_bytes{container="server",image="serve/api:2",gpu="1"} ${second}`,
      `gpuhost_container_gpu_memory_bytes{container="trainer",image="train/job:1",gpu="0"} ${22430 * 1024 * 1024}`,
    ])
  })
}

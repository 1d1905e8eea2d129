// The gpu collector against a stand-in nvidia-smi that prints a real capture, fails, hangs, or
// prints garbage: every outcome is GPU facts, the agent's side never throws, a hung one is killed.
import t from 'tap'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import { CollectorLoop } from '../../src/core/collector.js'
import { GpuCollector, NvidiaSmiReader, readGpuFacts } from '../../src/gpu/collector.js'
import { SnapshotStore } from '../../src/core/snapshot.js'
import { fakeNvidiaSmi, FIXTURES } from '../harness/nvidia-smi.js'
import { testDir } from '../harness/agent.js'

const A5000 = 'xml/rtx-a5000_x2_driver-590.44.01_dtd-v13.xml'

/** a stand-in that records its pid, then runs `body` (sh) */
function script(t: Parameters<typeof testDir>[0], body: string): { path: string; pidFile: string; dir: string } {
  const dir = testDir(t).path
  const path = join(dir, 'nvidia-smi')
  const pidFile = join(dir, 'pid')
  writeFileSync(path, `#!/bin/sh\necho $$ > '${pidFile}'\n${body}\n`)
  chmodSync(path, 0o755)
  return { path, pidFile, dir }
}

/** the process has exited (a zombie left for an init that does not reap counts as exited) */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    let stat: string
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    } catch {
      return true
    }
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return true
    await sleep(20)
  }
  return false
}

t.test('a real capture gives the facts', async (t) => {
  const facts = await readGpuFacts({ nvidiaSmi: fakeNvidiaSmi(t, { fixture: A5000 }), timeoutMs: 5000 })
  t.match(facts, { available: true, driverVersion: '590.44.01', cudaVersion: '13.1' })
  t.same(
    facts.gpus.map((g) => g.name),
    ['NVIDIA RTX A5000', 'NVIDIA RTX A5000'],
  )
})

t.test('a hung nvidia-smi is killed with SIGKILL and reported', async (t) => {
  const stub = script(t, "trap '' TERM\nexec sleep 3600")
  const started = Date.now()
  const facts = await readGpuFacts({ nvidiaSmi: stub.path, timeoutMs: 500 })
  t.comment(`answered after ${Date.now() - started} ms with a 500 ms timeout`)
  t.equal(facts.available, false)
  t.equal(facts.reason, `${stub.path} did not answer within 0.5 s and was killed`)
  t.same(facts.gpus, [])
  t.ok(await gone(Number(readFileSync(stub.pidFile, 'utf8'))), 'the process is gone, though it ignores SIGTERM')
})

t.test('a hung child of nvidia-smi holding its output open does not hold the answer back', async (t) => {
  const stub = script(t, `sleep 3600 &\necho $! > '${'CHILD'}'\nwait`)
  const childPidFile = join(stub.dir, 'child')
  writeFileSync(stub.path, readFileSync(stub.path, 'utf8').replace("'CHILD'", `'${childPidFile}'`))
  const facts = await readGpuFacts({ nvidiaSmi: stub.path, timeoutMs: 500 })
  t.match(facts, { available: false, reason: /did not answer within 0\.5 s/ })
  t.ok(await gone(Number(readFileSync(childPidFile, 'utf8'))), 'its child is killed with it')
})

t.test('failing, missing, garbage', async (t) => {
  const failing = fakeNvidiaSmi(t, {
    fail: 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver',
  })
  t.same(await readGpuFacts({ nvidiaSmi: failing, timeoutMs: 5000 }), {
    available: false,
    gpus: [],
    reason: `${failing} exited with 9: NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver`,
  })
  t.same(await readGpuFacts({ nvidiaSmi: '/nonexistent/nvidia-smi', timeoutMs: 5000 }), {
    available: false,
    reason:
      '/nonexistent/nvidia-smi not found: install the NVIDIA driver (it brings nvidia-smi) ' +
      'or set gpu.nvidiaSmi to its path',
    gpus: [],
  })
  const garbage = fakeNvidiaSmi(t, {
    fixture: 'text/h100-80gb-hbm3_mig-enabled-4-instances_driver-590.48.01_cuda-13.1.txt',
  })
  t.match(await readGpuFacts({ nvidiaSmi: garbage, timeoutMs: 5000 }), {
    available: false,
    reason: /not valid XML|no <nvidia_smi_log>/,
    gpus: [],
  })
  const truncated = script(t, `head -c 3000 '${join(FIXTURES, A5000)}'`)
  t.match(await readGpuFacts({ nvidiaSmi: truncated.path, timeoutMs: 5000 }), {
    available: false,
    reason: /not valid XML/,
  })
})

t.test('concurrent reads share one nvidia-smi run', async (t) => {
  // Each collection is one -q -x run and one --query-gpu run; count the first.
  const stub = script(t, `echo "$1" >> '${'COUNT'}'\nsleep 0.3\nexec cat '${join(FIXTURES, A5000)}'`)
  const countFile = join(stub.dir, 'count')
  writeFileSync(stub.path, readFileSync(stub.path, 'utf8').replace("'COUNT'", `'${countFile}'`))
  const reader = new NvidiaSmiReader({ nvidiaSmi: stub.path, timeoutMs: 5000 })
  const [a, b, c] = await Promise.all([reader.read(), reader.read(), reader.read()])
  t.equal(a, b)
  t.equal(b, c)
  const runs = () => readFileSync(countFile, 'utf8').trim().split('\n')
  t.same(runs(), ['-q', '--query-gpu=uuid,compute_cap'], 'one collection for three reads, its two runs in turn')
  await reader.read()
  t.equal(runs().filter((a) => a === '-q').length, 2, 'a later read runs again')
})

t.test('stopping kills a run in flight', async (t) => {
  const stub = script(t, 'exec sleep 3600')
  const reader = new NvidiaSmiReader({ nvidiaSmi: stub.path, timeoutMs: 60_000 })
  const pending = reader.read()
  while (!existsSync(stub.pidFile)) await sleep(10)
  reader.stop()
  t.match(await pending, { available: false, reason: /was stopped/ })
  t.ok(await gone(Number(readFileSync(stub.pidFile, 'utf8'))))
})

t.test('in the collector loop: facts into the snapshot, failure marked, loop goes on', async (t) => {
  const store = new SnapshotStore(['gpu'])
  const log = pino({ level: 'silent' })
  const hung = new NvidiaSmiReader({ nvidiaSmi: fakeNvidiaSmi(t, { hang: true }), timeoutMs: 300 })
  const loop = new CollectorLoop(new GpuCollector(hung, store), 60_000, store, log)
  await loop.refresh()
  t.match(store.get().gpu, { available: false, reason: /did not answer within 0\.3 s/ })
  t.match(store.get().collectors.gpu, { success: false, error: /did not answer/ })
  t.ok(store.ready(), 'a failed first run still counts as collected')
  await loop.stop()

  const ok = new NvidiaSmiReader({ nvidiaSmi: fakeNvidiaSmi(t, { fixture: A5000 }), timeoutMs: 5000 })
  const loop2 = new CollectorLoop(new GpuCollector(ok, store), 60_000, store, log)
  await loop2.refresh()
  await loop2.stop()
  t.match(store.get().gpu, { available: true, driverVersion: '590.44.01' })
  t.match(store.get().collectors.gpu, { success: true })
})

t.test('the compute capability comes from a second run, --query-gpu=uuid,compute_cap', async (t) => {
  const smi = fakeNvidiaSmi(t, {
    fixture: A5000,
    queryGpu: 'csv/derived/rtx-a5000_x2_driver-590.44.01_uuid-compute_cap.csv',
  })
  const facts = await readGpuFacts({ nvidiaSmi: smi, timeoutMs: 5000 })
  t.same(
    facts.gpus.map((g) => g.computeCapability),
    ['8.6', '8.6'],
  )
  t.equal(facts.computeCapabilityUnknown, undefined)
})

t.test('a driver whose nvidia-smi does not know compute_cap leaves it unknown and says why', async (t) => {
  const smi = fakeNvidiaSmi(t, {
    fixture: 'xml/quadro-p400_driver-418.43_no-doctype.xml',
    queryGpu: 'csv/derived/quadro-p400_driver-418.43_no-compute_cap.csv',
  })
  const facts = await readGpuFacts({ nvidiaSmi: smi, timeoutMs: 5000 })
  t.equal(facts.available, true, 'the rest of the facts stand')
  t.equal(facts.gpus[0].computeCapability, undefined)
  t.match(facts.computeCapabilityUnknown, /exited with 2: Field "compute_cap" is not a valid field to query/)
})

t.test('the stand-in answers --query-gpu with the fields in the order asked', async (t) => {
  const smi = fakeNvidiaSmi(t, {
    fixture: A5000,
    queryGpu: 'csv/h100-80gb-hbm3_mig-enabled_driver-590.48.01_query-gpu-all-fields.csv',
  })
  const { execFileSync } = await import('node:child_process')
  const out = execFileSync(smi, ['--query-gpu=compute_cap,memory.total,name', '--format=csv,noheader,nounits'], {
    encoding: 'utf8',
  })
  t.equal(out, '9.0, 81559, NVIDIA H100 80GB HBM3\n')
  const withHeader = execFileSync(smi, ['--query-gpu=name,memory.total', '--format=csv'], { encoding: 'utf8' })
  t.equal(withHeader, 'name, memory.total [MiB]\nNVIDIA H100 80GB HBM3, 81559 MiB\n')
})

t.test('a query run that prints garbage leaves the capability unknown, not the facts unavailable', async (t) => {
  const xml = join(FIXTURES, A5000)
  const stub = script(t, `case "$1" in -q) cat '${xml}' ;; *) echo 'not, csv, at, all' ;; esac`)
  const facts = await readGpuFacts({ nvidiaSmi: stub.path, timeoutMs: 5000 })
  t.equal(facts.available, true)
  t.match(facts.computeCapabilityUnknown, /line 1 has 4 cells, not 2/)
})

t.test('a hung query run is killed like a hung -q -x run', async (t) => {
  const xml = join(FIXTURES, A5000)
  const stub = script(t, `case "$1" in -q) cat '${xml}' ;; *) trap '' TERM; exec sleep 3600 ;; esac`)
  const facts = await readGpuFacts({ nvidiaSmi: stub.path, timeoutMs: 800 })
  t.equal(facts.available, true)
  t.match(facts.computeCapabilityUnknown, /did not answer within 0\.8 s and was killed/)
  t.ok(await gone(Number(readFileSync(stub.pidFile, 'utf8'))), 'the query process is gone')
})

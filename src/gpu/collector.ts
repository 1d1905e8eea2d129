// The gpu collector: runs `nvidia-smi -q -x` with a hard timeout and puts the parsed facts into
// the snapshot. A GPU that fell off the bus makes nvidia-smi hang, so on timeout the whole process
// group is killed with SIGKILL and the answer is given at once, without waiting for it to die.
// Overlapping requests share the run in flight: there are never two nvidia-smi at once.
// No `-q -x` document of any DTD carries the compute capability, so a second run, after the first
// and under the same timeout and kill, asks `--query-gpu=uuid,compute_cap`; a driver whose
// nvidia-smi does not know the field leaves the capability unknown and says why.
import { spawn } from 'node:child_process'
import type { Collector } from '../core/collector.js'
import { NvidiaSmiParseError, parseNvidiaSmiXml } from './parse.js'
import { countPciGpus } from './health.js'
import { withProcessContainers } from './containers.js'
import { COMPUTE_CAP_FIELDS, computeCapabilities, parseQueryGpuCsv, queryGpuArgs } from './query-csv.js'
import type { GpuFacts, SnapshotStore } from '../core/snapshot.js'

export interface NvidiaSmiOptions {
  /** path or name of nvidia-smi */
  nvidiaSmi: string
  timeoutMs: number
}

/** nvidia-smi's XML for a few hundred GPUs stays well below this; more means something is wrong */
const MAX_OUTPUT_BYTES = 32 * 1024 * 1024
/** how long to wait, after nvidia-smi exits, for the rest of its output to come through the pipes */
const PIPE_GRACE_MS = 500

type RunResult = { ok: true; stdout: string } | { ok: false; reason: string }

/** Runs nvidia-smi once and turns every outcome into GpuFacts; never throws. */
export async function readGpuFacts(opts: NvidiaSmiOptions, signal?: AbortSignal): Promise<GpuFacts> {
  const run = await runNvidiaSmi(opts, ['-q', '-x'], signal)
  if (!run.ok) return { available: false, reason: run.reason, gpus: [] }
  let facts: GpuFacts
  try {
    facts = parseNvidiaSmiXml(run.stdout)
  } catch (err) {
    return { available: false, reason: parseFailure(err), gpus: [] }
  }
  if (facts.gpus.length > 0 && facts.gpus.some((g) => g.computeCapability === undefined)) {
    await addComputeCapabilities(facts, opts, signal)
  }
  return facts
}

/** Fills each GPU's compute capability from the query run; on failure says why it stays unknown. */
async function addComputeCapabilities(facts: GpuFacts, opts: NvidiaSmiOptions, signal?: AbortSignal): Promise<void> {
  const run = await runNvidiaSmi(opts, queryGpuArgs(COMPUTE_CAP_FIELDS), signal)
  if (!run.ok) {
    facts.computeCapabilityUnknown = `compute capability unknown: ${run.reason}`
    return
  }
  let caps: Map<string, string>
  try {
    caps = computeCapabilities(parseQueryGpuCsv(run.stdout, COMPUTE_CAP_FIELDS))
  } catch (err) {
    facts.computeCapabilityUnknown = `compute capability unknown: ${parseFailure(err)}`
    return
  }
  const missing: number[] = []
  for (const gpu of facts.gpus) {
    const cap = gpu.computeCapability ?? caps.get(gpu.uuid)
    if (cap === undefined) missing.push(gpu.index)
    else gpu.computeCapability = cap
  }
  if (missing.length > 0) {
    const gpus = missing.join(', ')
    facts.computeCapabilityUnknown = `compute capability unknown: nvidia-smi reported none for GPU ${gpus}`
  }
}

function parseFailure(err: unknown): string {
  return err instanceof NvidiaSmiParseError ? err.message : `cannot parse nvidia-smi output: ${(err as Error).message}`
}

function runNvidiaSmi(opts: NvidiaSmiOptions, args: string[], signal?: AbortSignal): Promise<RunResult> {
  const { nvidiaSmi, timeoutMs } = opts
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve({ ok: false, reason: 'stopped before nvidia-smi ran' })
    let settled = false
    const onAbort = () => {
      kill()
      finish({ ok: false, reason: `${nvidiaSmi} was stopped` })
    }
    const finish = (r: RunResult) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      resolve(r)
    }
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    let size = 0
    // Its own process group, so a timeout kills whatever it started too.
    const child = spawn(nvidiaSmi, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL')
      } catch {
        child.kill('SIGKILL')
      }
    }
    const timer = setTimeout(() => {
      kill()
      finish({ ok: false, reason: `${nvidiaSmi} did not answer within ${timeoutMs / 1000} s and was killed` })
    }, timeoutMs)
    signal?.addEventListener('abort', onAbort)
    child.on('error', (err: NodeJS.ErrnoException) => {
      finish({
        ok: false,
        reason:
          err.code === 'ENOENT'
            ? `${nvidiaSmi} not found: install the NVIDIA driver (it brings nvidia-smi) or set gpu.nvidiaSmi to its ` +
              'path'
            : `cannot run ${nvidiaSmi}: ${err.message}`,
      })
    })
    child.stdout.on('data', (d: Buffer) => {
      size += d.length
      if (size > MAX_OUTPUT_BYTES) {
        kill()
        finish({ ok: false, reason: `${nvidiaSmi} printed more than ${MAX_OUTPUT_BYTES} bytes` })
      } else stdout.push(d)
    })
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 64) stderr.push(d)
    })
    // Judge on 'exit' once both pipes have ended, but wait at most PIPE_GRACE_MS for them: a
    // grandchild holding the pipes open must not keep the answer back, and output still in the
    // pipes when the exit is seen must not be lost.
    const ended = (stream: NodeJS.ReadableStream) => new Promise<void>((r) => stream.once('end', r).once('close', r))
    const drained = Promise.all([ended(child.stdout), ended(child.stderr)])
    child.on('exit', (code, signal) => {
      let grace: NodeJS.Timeout | undefined
      const waited = new Promise<void>((r) => {
        grace = setTimeout(r, PIPE_GRACE_MS)
      })
      void Promise.race([drained, waited]).then(() => {
        clearTimeout(grace)
        child.stdout.destroy()
        child.stderr.destroy()
        const out = Buffer.concat(stdout).toString('utf8')
        if (code === 0) return finish({ ok: true, stdout: out })
        const said = firstLine(Buffer.concat(stderr).toString('utf8')) || firstLine(out)
        const how = signal ? `was killed by ${signal}` : `exited with ${code}`
        finish({ ok: false, reason: `${nvidiaSmi} ${how}${said ? `: ${said}` : ''}` })
      })
    })
  })
}

function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0)
      ?.slice(0, 300) ?? ''
  )
}

/** Shares one run among concurrent callers (the loop, the check action, a refresh). */
export class NvidiaSmiReader {
  private inFlight: Promise<GpuFacts> | null = null
  private readonly stopping = new AbortController()

  constructor(private readonly opts: NvidiaSmiOptions) {}

  read(): Promise<GpuFacts> {
    this.inFlight ??= readGpuFacts(this.opts, this.stopping.signal).finally(() => {
      this.inFlight = null
    })
    return this.inFlight
  }

  /** kills a run in flight, so shutting down never waits for a hung nvidia-smi */
  stop(): void {
    this.stopping.abort()
  }
}

export class GpuCollector implements Collector {
  readonly name = 'gpu'

  constructor(
    private readonly reader: NvidiaSmiReader,
    private readonly store: SnapshotStore,
    /** sysfs PCI devices, for the GPUs expected; null: not counted */
    private readonly pciRoot: string | null = '/sys/bus/pci/devices',
    /** /proc, to map the pids holding GPU memory to containers; null: not mapped (gpu.containerMemory off) */
    private readonly procRoot: string | null = '/proc',
    /** told when this /proc shows none of the processes nvidia-smi lists: the mapping cannot work here */
    private readonly onProcessesHidden?: (listed: number) => void,
  ) {}

  async collect(): Promise<void> {
    const read = await this.reader.read()
    // A GPU that fell off the bus is absent from nvidia-smi's list but still on the PCI bus.
    const expected = this.pciRoot === null ? null : await countPciGpus(this.pciRoot)
    const counted = expected === null ? read : { ...read, expectedGpus: expected }
    let facts = counted
    if (this.procRoot !== null) {
      const mapped = await withProcessContainers(counted, this.procRoot)
      facts = mapped.facts
      if (mapped.listed > 0 && mapped.hidden === mapped.listed) this.onProcessesHidden?.(mapped.listed)
    }
    this.store.set('gpu', facts)
    // The facts say why; throwing marks the collector failed for metrics and the failure log.
    if (!facts.available) throw new Error(facts.reason ?? 'GPU facts unavailable')
  }
}

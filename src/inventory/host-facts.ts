// Host facts collector: OS, kernel, CPU, memory, system vendor and model, virtualisation and block
// devices, from systeminformation. They change only with a reboot or new hardware, so they are read
// once at agent start and again on SIGHUP, never per scrape or per collection: systeminformation
// reads files and runs commands (lsblk, and dmidecode or sysfs for the system) for them. It runs in
// a child process (host-facts-reader.ts) that prints what it read and exits, so the agent never
// carries systeminformation's ~12 MiB; what the child prints is bounded and mapped by toHostFacts
// as any outside input is.
import { spawn } from 'node:child_process'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import type { Component } from '../core/lifecycle.js'
import type { SnapshotStore } from '../core/snapshot.js'
import { systemClock, type Clock } from '../core/clock.js'
import { toHostFacts, type RawHostFacts } from './host-facts-map.js'
import { HOST_PARTS, type HostFacts } from './host-facts-schema.js'

/**
 * Each part's bound in the reader. systeminformation cannot be cancelled: a part past it is
 * reported unavailable; the child is killed if it has not answered a little after that.
 */
export const HOST_FACTS_TIMEOUT_MS = 10_000
/** what the reader may print: five parts of a host with many disks are a few tens of KiB */
const READER_OUTPUT_MAX = 4 * 1024 * 1024
// beside this module: compiled (.js), or as TypeScript under a loader (process.execArgv carries it)
const READER = fileURLToPath(new URL(`./host-facts-reader${extname(fileURLToPath(import.meta.url))}`, import.meta.url))

/** Reads the host facts; never throws: a part that fails or times out is listed in `unavailable`. */
export async function readHostFacts(opts: { timeoutMs?: number; log?: Logger; now?: Clock } = {}): Promise<HostFacts> {
  const timeoutMs = opts.timeoutMs ?? HOST_FACTS_TIMEOUT_MS
  const now = opts.now ?? systemClock
  let raw: RawHostFacts
  try {
    raw = await runReader(timeoutMs)
  } catch (err) {
    raw = { unavailable: HOST_PARTS.map((part) => ({ part, reason: (err as Error).message })) }
  }
  const facts = toHostFacts(raw, now())
  for (const { part, reason } of facts.unavailable)
    opts.log?.warn({ part, err: reason }, `cannot read the host's ${part} facts: they are left out`)
  return facts
}

/** runs the reader under the same Node (and its loader flags), its output bounded and parsed */
function runReader(timeoutMs: number): Promise<RawHostFacts> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...loaderFlags(process.execArgv), READER, String(timeoutMs)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs + 5000,
      killSignal: 'SIGKILL',
    })
    const out: Buffer[] = []
    let size = 0
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > READER_OUTPUT_MAX) child.kill('SIGKILL')
      else out.push(chunk)
    })
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 2000) stderr += chunk.toString('utf8')
    })
    child.once('error', reject)
    child.once('close', (code, signal) => {
      if (size > READER_OUTPUT_MAX)
        return reject(new Error(`the host facts reader printed over ${READER_OUTPUT_MAX} bytes`))
      if (code !== 0) {
        const why = signal ? `was killed (${signal})` : `exited with ${code}`
        return reject(
          new Error(`the host facts reader ${why}${stderr.trim() ? `: ${stderr.trim().slice(0, 300)}` : ''}`),
        )
      }
      try {
        const parsed: unknown = JSON.parse(Buffer.concat(out).toString('utf8'))
        if (!parsed || typeof parsed !== 'object') throw new Error('not an object')
        resolve(parsed as RawHostFacts)
      } catch (err) {
        reject(new Error(`the host facts reader printed no facts (${(err as Error).message})`))
      }
    })
  })
}

/**
 * The agent's reader: reads at start and on each SIGHUP into the snapshot's `host`, recording the
 * read as the `host` collector (failed when a part is unavailable). A SIGHUP during a read asks
 * for one more read after it. Built, it marks the facts pending (null) so the coordinator link can
 * wait for them before its hello.
 */
export class HostFactsCollector implements Component {
  readonly name = 'collector:host'
  private running: Promise<void> | null = null
  private again = false
  private stopped = false
  private readonly onHangup = () => {
    this.log.info('SIGHUP: reading the host facts again')
    void this.refresh()
  }

  constructor(
    private readonly store: SnapshotStore,
    private readonly log: Logger,
    private readonly read: () => Promise<HostFacts> = () => readHostFacts({ log }),
    private readonly now: Clock = systemClock,
  ) {
    store.set('host', null)
  }

  async start(): Promise<void> {
    this.stopped = false
    process.on('SIGHUP', this.onHangup)
    void this.refresh()
  }

  /** A read in flight is not waited for (a hung lsblk would hold up the stop): its answer is dropped. */
  async stop(): Promise<void> {
    this.stopped = true
    this.again = false
    process.off('SIGHUP', this.onHangup)
  }

  /** reads now, or once more after the read in flight */
  refresh(): Promise<void> {
    if (this.running) {
      this.again = true
      return this.running
    }
    this.running = this.readOnce().finally(() => {
      this.running = null
      if (this.again && !this.stopped) {
        this.again = false
        void this.refresh()
      }
    })
    return this.running
  }

  private async readOnce(): Promise<void> {
    const started = process.hrtime.bigint()
    let facts: HostFacts
    try {
      facts = await this.read()
    } catch (err) {
      // readHostFacts does not throw; an injected reader might
      const reason = (err as Error).message
      facts = toHostFacts({ unavailable: HOST_PARTS.map((part) => ({ part, reason })) }, this.now())
    }
    if (this.stopped) return
    this.store.set('host', facts)
    const missing = facts.unavailable.map((u) => `${u.part}: ${u.reason}`)
    this.store.recordCollector('host', {
      success: missing.length === 0,
      durationSeconds: Number(process.hrtime.bigint() - started) / 1e9,
      at: this.now().toISOString(),
      ...(missing.length > 0 ? { error: `partial host facts: ${missing.join('; ')}` } : {}),
    })
  }
}

/**
 * The flags of this Node that the reader needs too: a module loader (TypeScript under tests) and
 * source maps. Not `-e`/`-p` and their code, which would run instead of the reader.
 */
function loaderFlags(execArgv: readonly string[]): string[] {
  return execArgv.filter((a) =>
    /^--(import|loader|experimental-loader|require|conditions)=|^--enable-source-maps$/.test(a),
  )
}

// Host facts collector: OS, kernel, CPU, memory, system vendor and model, virtualisation and block
// devices, from systeminformation. They change only with a reboot or new hardware, so they are read
// once at agent start and again on SIGHUP, never per scrape or per collection: systeminformation
// reads files and runs commands (lsblk, and dmidecode or sysfs for the system) for them.
// systeminformation is loaded on the first read, so commands that never read host facts never load it.
import type { Logger } from 'pino'
import type { Component } from '../core/lifecycle.js'
import type { SnapshotStore } from '../core/snapshot.js'
import { systemClock, type Clock } from '../core/clock.js'
import { toHostFacts, type RawHostFacts } from './host-facts-map.js'
import { HOST_PARTS, type HostFacts, type HostPart } from './host-facts-schema.js'

/**
 * Each part's bound. systeminformation cannot be cancelled: a part past it is reported unavailable
 * and its late answer ignored; the commands it runs carry their own timeouts.
 */
export const HOST_FACTS_TIMEOUT_MS = 10_000

/** Reads the host facts; never throws: a part that fails or times out is listed in `unavailable`. */
export async function readHostFacts(opts: { timeoutMs?: number; log?: Logger; now?: Clock } = {}): Promise<HostFacts> {
  const timeoutMs = opts.timeoutMs ?? HOST_FACTS_TIMEOUT_MS
  const now = opts.now ?? systemClock
  const unavailable: RawHostFacts['unavailable'] = []
  const failed = (part: HostPart, err: unknown) => {
    const reason = err instanceof Error ? err.message : String(err)
    unavailable.push({ part, reason })
    opts.log?.warn({ part, err: reason }, `cannot read the host's ${part} facts: they are left out`)
  }
  let si: typeof import('systeminformation')
  try {
    si = (await import('systeminformation')).default
  } catch (err) {
    for (const part of HOST_PARTS) failed(part, err)
    return toHostFacts({ unavailable }, now())
  }
  const read = async (part: HostPart, call: () => Promise<unknown>): Promise<unknown> => {
    try {
      return await withTimeout(Promise.resolve().then(call), timeoutMs, part)
    } catch (err) {
      failed(part, err)
      return undefined
    }
  }
  const [osInfo, cpu, mem, system, blockDevices] = await Promise.all([
    read('os', () => si.osInfo()),
    read('cpu', () => si.cpu()),
    read('memory', () => si.mem()),
    read('system', () => si.system()),
    read('blockDevices', () => si.blockDevices()),
  ])
  return toHostFacts({ osInfo, cpu, mem, system, blockDevices, unavailable }, now())
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms)
    timer.unref()
  })
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
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

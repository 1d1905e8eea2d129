// What several benches share: a free loopback port, a process's RSS from /proc, a nearest-rank
// percentile, and the envelope of a protocol message from a simulated agent.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer()
      .once('error', rej)
      .listen(0, '127.0.0.1', () => {
        const port = (srv.address() as { port: number }).port
        srv.close(() => res(port))
      })
  })
}

/** VmRSS (now) or VmHWM (peak) of a process, in MiB; NaN when /proc does not say */
export function rssMiB(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

/** nearest-rank percentile of an ascending list */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

/** a protocol message's envelope, as an agent sends it */
export const envelope = (hostId: string, type: string, body: object) => ({
  v: 1,
  id: crypto.randomUUID(),
  ts: new Date().toISOString(),
  hostId,
  type,
  ...body,
})

/**
 * The NODE_OPTIONS the systemd unit runs the agent with (systemd/gpuhost-agent.service), so that a
 * bench measures the agent as it runs in service.
 */
export function serviceNodeOptions(): string {
  const unit = readFileSync(new URL('../systemd/gpuhost-agent.service', import.meta.url), 'utf8')
  return /^Environment=NODE_OPTIONS=(.*)$/m.exec(unit)?.[1] ?? ''
}

type Teardown = () => void | Promise<void>

/**
 * What the test harness's start helpers need of a tap test, for a bench: `t.teardown` collects
 * what each started service must undo, and `run(main)` undoes it all (last first) whether main
 * succeeded or failed, then exits 0 or 1.
 */
export function benchRun(): { t: { teardown(fn: Teardown): void }; run(main: () => Promise<void>): void } {
  const teardowns: Teardown[] = []
  const undo = async () => {
    for (const fn of teardowns.reverse()) await fn()
  }
  return {
    t: { teardown: (fn) => void teardowns.push(fn) },
    run: (main) =>
      void main().then(
        async () => {
          await undo()
          process.exit(0)
        },
        async (err) => {
          process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`)
          await undo()
          process.exit(1)
        },
      ),
  }
}

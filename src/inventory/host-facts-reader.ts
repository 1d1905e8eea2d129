// The child process that reads the host facts with systeminformation and prints them as one JSON
// line (RawHostFacts) on stdout; src/inventory/host-facts.ts runs it. The read happens once at start
// and on SIGHUP, and systeminformation with what it reads stays ~12 MiB in a process once loaded:
// in a child that exits, the agent never carries it.
import { HOST_PARTS, type HostPart } from './host-facts-schema.js'
import type { RawHostFacts } from './host-facts-map.js'

const timeoutMs = Number(process.argv[2]) || 10_000

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${timeoutMs / 1000} s`)), timeoutMs)
  })
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

async function main(): Promise<RawHostFacts> {
  const unavailable: NonNullable<RawHostFacts['unavailable']> = []
  let si: typeof import('systeminformation')
  try {
    si = (await import('systeminformation')).default
  } catch (err) {
    return { unavailable: HOST_PARTS.map((part) => ({ part, reason: (err as Error).message })) }
  }
  const read = async (part: HostPart, call: () => Promise<unknown>): Promise<unknown> => {
    try {
      return await withTimeout(Promise.resolve().then(call), part)
    } catch (err) {
      unavailable.push({ part, reason: err instanceof Error ? err.message : String(err) })
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
  return { osInfo, cpu, mem, system, blockDevices, unavailable }
}

// Exits as soon as the line is out: a command systeminformation started and that timed out must
// not keep the child alive.
void main().then((raw) => process.stdout.write(JSON.stringify(raw) + '\n', () => process.exit(0)))

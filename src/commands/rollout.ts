// gpuhost rollout start|status|cancel|pause|resume: the coordinator's rollouts API from a shell.
// A person on a terminal sees a bar of hosts done while --wait follows a rollout; scripts get
// --json. Exit 1 when a followed rollout ends failed or cancelled, 69 when the coordinator cannot
// be reached or refuses.
import { readTokenFile } from '../config.js'
import { Presets, SingleBar } from 'cli-progress'
import type { GlobalOptions } from './options.js'
import { CliError, EXIT } from '../exit-codes.js'

const REQUEST_TIMEOUT_MS = 30_000
const POLL_MS = 1000

export interface RolloutCliOptions {
  action: 'start' | 'status' | 'cancel' | 'pause' | 'resume'
  id?: string
  url?: string
  tokenFile?: string
  image?: string[]
  selector?: string
  maxParallel?: number
  maxFailed?: number
  replaces?: string[]
  registryParallel?: number
  peerAffinityLabel?: string
  /** false with --no-peers */
  peers?: boolean
  dryRun?: boolean
  wait?: boolean
}

type BySource = Partial<Record<'registry' | 'mirror' | 'peer', number>>

interface RolloutView {
  id: string
  state: string
  spec: { images: string[]; maxParallelHosts: number }
  hosts: { hostId: string; state: string; reason: string | null; bytesPulled: number; bytesBySource?: BySource }[]
  totals: { hosts: Record<string, number>; bytesPulled: number; bytesBySource?: BySource }
}

export async function run(raw: Record<string, unknown>, globals: GlobalOptions): Promise<number> {
  const opts = raw as unknown as RolloutCliOptions
  if (!opts.url) throw new CliError('--url is required (the coordinator, e.g. https://coordinator:9480)', EXIT.usage)
  if (!opts.tokenFile)
    throw new CliError("--token-file is required (a file holding the coordinator's admin token)", EXIT.usage)
  const api = client(opts.url, readToken(opts.tokenFile))
  const out = (v: unknown, text: string) =>
    process.stdout.write(globals.json ? JSON.stringify(v, null, 2) + '\n' : text)
  if (opts.action === 'start') {
    if (!opts.image?.length) throw new CliError('give at least one --image', EXIT.usage)
    if (opts.maxParallel === undefined || !Number.isInteger(opts.maxParallel) || opts.maxParallel < 1)
      throw new CliError('--max-parallel must be a whole number of hosts, at least 1', EXIT.usage)
    const rp = opts.registryParallel
    if (rp !== undefined && (!Number.isInteger(rp) || rp < 1))
      throw new CliError('--registry-parallel must be a whole number of hosts, at least 1', EXIT.usage)
    const body = {
      images: opts.image,
      maxParallelHosts: opts.maxParallel,
      ...(opts.selector ? { selector: opts.selector } : {}),
      ...(opts.maxFailed !== undefined ? { maxFailedHosts: opts.maxFailed } : {}),
      ...(opts.replaces?.length ? { replaces: opts.replaces } : {}),
      ...(rp !== undefined ? { registryParallel: rp } : {}),
      ...(opts.peerAffinityLabel ? { peerAffinityLabel: opts.peerAffinityLabel } : {}),
      ...(opts.peers === false ? { peers: false } : {}),
      ...(opts.dryRun ? { dryRun: true } : {}),
    }
    const created = (await api('POST', '/v1/rollouts', body)) as { id: string | null; hosts?: unknown[] }
    if (opts.dryRun) {
      out(created, formatPreview(created as never))
      return EXIT.ok
    }
    if (!opts.wait) {
      out(created, `rollout ${created.id} started\n`)
      return EXIT.ok
    }
    return follow(api, created.id!, globals, out)
  }
  if (!opts.id) throw new CliError(`gpuhost rollout ${opts.action} needs the rollout id`, EXIT.usage)
  if (opts.action === 'status') {
    if (opts.wait) return follow(api, opts.id, globals, out)
    const r = (await api('GET', `/v1/rollouts/${encodeURIComponent(opts.id)}`)) as RolloutView
    out(r, formatRollout(r))
    return EXIT.ok
  }
  const r = (await api('POST', `/v1/rollouts/${encodeURIComponent(opts.id)}/${opts.action}`)) as RolloutView
  out(r, formatRollout(r))
  return EXIT.ok
}

type Api = (method: string, path: string, body?: unknown) => Promise<unknown>

function readToken(file: string): string {
  try {
    return readTokenFile(file) as string
  } catch (err) {
    throw new CliError(`cannot read --token-file ${file}: ${(err as Error).message}`, EXIT.usage)
  }
}

function client(base: string, token: string): Api {
  try {
    new URL(base)
  } catch {
    throw new CliError(`--url ${base} is not a URL (e.g. https://coordinator:9480)`, EXIT.usage)
  }
  return async (method, path, body) => {
    let res: Response
    try {
      res = await fetch(new URL(path, base), {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause
      const why = cause?.code ?? cause?.message ?? (err as Error).message
      throw new CliError(`the coordinator at ${base} is unreachable: ${why}`, EXIT.unavailable)
    }
    const text = await res.text()
    let parsed: unknown = null
    try {
      parsed = JSON.parse(text)
    } catch {
      /* answered below */
    }
    if (!res.ok) {
      const why = (parsed as { error?: string } | null)?.error ?? text.trim().slice(0, 200)
      throw new CliError(
        `the coordinator answered ${res.status}: ${why}`,
        res.status < 500 ? EXIT.usage : EXIT.unavailable,
      )
    }
    if (parsed === null) throw new CliError(`the coordinator at ${base} did not answer with JSON`, EXIT.unavailable)
    return parsed
  }
}

/** Polls until the rollout finishes: a bar of hosts done on a terminal, one JSON document with --json. */
async function follow(api: Api, id: string, globals: GlobalOptions, out: (v: unknown, t: string) => void) {
  const bar =
    !globals.json && process.stderr.isTTY === true
      ? new SingleBar(
          {
            format: 'rollout {state} [{bar}] {value}/{total} hosts · {failed} failed · {mib} MiB',
            stream: process.stderr,
          },
          Presets.shades_classic,
        )
      : null
  let r: RolloutView
  for (;;) {
    r = (await api('GET', `/v1/rollouts/${encodeURIComponent(id)}`)) as RolloutView
    const h = r.totals.hosts
    const done = h.succeeded + h.skipped + h.failed
    const payload = { state: r.state, failed: h.failed, mib: (r.totals.bytesPulled / 2 ** 20).toFixed(1) }
    if (bar) {
      if (!bar.isActive) bar.start(r.hosts.length, done, payload)
      bar.setTotal(r.hosts.length)
      bar.update(done, payload)
    }
    if (['succeeded', 'failed', 'cancelled'].includes(r.state) && h.running === 0) break
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
  bar?.stop()
  out(r, formatRollout(r))
  return r.state === 'succeeded' ? EXIT.ok : EXIT.no
}

/** Pure: a rollout as a few lines: its state and totals, then one line per host. */
export function formatRollout(r: RolloutView): string {
  const h = r.totals.hosts
  const lines = [
    `rollout ${r.id} · ${r.state} · ${r.spec.images.join(', ')} · at most ${r.spec.maxParallelHosts} at a time`,
    `hosts: ${h.succeeded} succeeded, ${h.skipped} skipped, ${h.failed} failed, ${h.running} running, ` +
      `${h.pending} pending · ${mib(r.totals.bytesPulled)} MiB pulled${bySource(r.totals.bytesBySource)}`,
  ]
  for (const host of r.hosts)
    lines.push(
      `  ${host.state.padEnd(9)} ${host.hostId}${bySource(host.bytesBySource)}${host.reason ? `: ${host.reason}` : ''}`,
    )
  return lines.join('\n') + '\n'
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1)

/** " (registry 200.0 MiB, peer 600.0 MiB)": the kinds that carried bytes; '' when none did */
function bySource(b: BySource | undefined): string {
  const parts = (['registry', 'mirror', 'peer'] as const).filter((k) => (b?.[k] ?? 0) > 0)
  return parts.length ? ` (${parts.map((k) => `${k} ${mib(b![k]!)} MiB`).join(', ')})` : ''
}

function formatPreview(p: {
  hosts: { hostId: string; images: string[]; skipped: { ref: string; reason: string }[] }[]
}) {
  const lines = [`dry run: ${p.hosts.length} hosts would be reached`]
  for (const h of p.hosts) {
    const skipped = h.skipped.map((s) => ` · skips ${s.ref}: ${s.reason}`).join('')
    lines.push(`  ${h.hostId}: ${h.images.length ? h.images.join(', ') : 'nothing'}${skipped}`)
  }
  return lines.join('\n') + '\n'
}

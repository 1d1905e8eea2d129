// gpuhost status: the running agent's /v1/status, for a person (default) or a script (--json).
import { loadAgentConfig } from '../config.js'
import { CliError, EXIT } from '../exit-codes.js'
import { splitHostPort } from '../http/server.js'
import type { AgentStatus } from '../agent/status.js'
import type { GlobalOptions } from './options.js'
import { checkKubeletGc, prunePolicyOf } from '../prune/kubelet-gc.js'
import { kubeletLines } from './check.js'

const REQUEST_TIMEOUT_MS = 10_000

export async function run(opts: { url?: string }, globals: GlobalOptions): Promise<number> {
  // The kubelet's file is on this host: only when the agent is this host's (no --url) is it read.
  const config = opts.url ? null : loadAgentConfig(globals.config)
  const base = opts.url ?? agentUrl(config!.listen)
  let url: URL
  try {
    url = new URL('/v1/status', base)
  } catch {
    throw new CliError(`--url ${base} is not a URL (e.g. http://127.0.0.1:9477)`, EXIT.usage)
  }
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause
    throw new CliError(
      `the agent at ${base} is unreachable: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      EXIT.unavailable,
    )
  }
  const text = await res.text()
  if (!res.ok)
    throw new CliError(`the agent at ${base} answered ${res.status}: ${text.trim().slice(0, 200)}`, EXIT.unavailable)
  let status: AgentStatus
  try {
    status = JSON.parse(text) as AgentStatus
  } catch {
    throw new CliError(`the agent at ${base} did not answer with JSON; is it a gpuhost agent?`, EXIT.unavailable)
  }
  const kubelet = config
    ? checkKubeletGc(config.runtime.kubeletConfig, prunePolicyOf(config, config.runtime.kind))
    : undefined
  process.stdout.write(
    globals.json
      ? JSON.stringify(kubelet ? { ...status, kubelet } : status, null, 2) + '\n'
      : formatStatus(status) +
          (kubelet
            ? kubeletLines(kubelet)
                .map((l) => l + '\n')
                .join('')
            : ''),
  )
  // A part failing is an answer, not an error of this command: 1, as `systemctl is-system-running`
  // says "degraded". An agent of an older version sends no list: its collectors say the same.
  const failing = status.failingComponents ?? Object.values(status.collectors).filter((c) => !c.success)
  return failing.length > 0 ? EXIT.no : EXIT.ok
}

/** the agent listens on `listen`; a wildcard address is reached on loopback */
export function agentUrl(listen: string): string {
  const { host, port } = splitHostPort(listen)
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`
}

/** Pure: the status as a few lines a person reads at a glance. */
export function formatStatus(s: AgentStatus): string {
  const lines: string[] = [`host ${s.hostId} · gpuhost ${s.version} · snapshot ${s.takenAt}`]
  lines.push(
    s.docker.reachable
      ? `${(s.docker.kind ?? 'docker').padEnd(10)} ${s.docker.version ?? '?'} · root ${s.docker.rootDir ?? '?'}`
      : `${(s.docker.kind ?? 'docker').padEnd(10)} unreachable: ${s.docker.reason ?? 'unknown reason'}` +
          (s.docker.hint ? `\n           ${s.docker.hint}` : ''),
  )
  if (s.gpu.available) {
    const names = [...new Set(s.gpu.gpus.map((g) => g.name))].join(', ') || '?'
    const parts = [
      `${s.gpu.gpus.length} × ${names}`,
      `driver ${s.gpu.driverVersion ?? '?'}`,
      `CUDA ${s.gpu.cudaVersion ?? '?'}`,
    ]
    lines.push(`gpu        ${parts.join(' · ')}`)
  } else {
    lines.push(`gpu        unavailable: ${s.gpu.reason ?? 'unknown reason'}`)
  }
  if (s.disk) {
    const used = `${bytes(s.disk.usedBytes)} used of ${bytes(s.disk.sizeBytes)} (${s.disk.usedPercent.toFixed(1)} %)`
    lines.push(`disk       ${s.disk.mountpoint}: ${used}, ${bytes(s.disk.availBytes)} available`)
  } else {
    lines.push('disk       not measured yet')
  }
  const i = s.images
  if (i) {
    lines.push(`images     ${i.count} · ${bytes(i.sizeBytes)}`)
    lines.push(`  in use   ${i.inUse} · ${bytes(i.inUseSizeBytes)}`)
    lines.push(`  unused   ${i.unused} · ${bytes(i.unusedSizeBytes)}`)
    lines.push(`  dangling ${i.dangling} · ${bytes(i.danglingSizeBytes)}`)
    if (i.cudaIncompatible > 0) lines.push(`  CUDA-incompatible ${i.cudaIncompatible}`)
  } else {
    lines.push('images     not listed yet')
  }
  const b = s.diskBreakdown
  if (b) {
    const k = b.bytes
    lines.push(
      `docker df  images ${bytes(b.imagesBytes)} (unique ${bytes(k.images_unique)}) · containers ` +
        `${bytes(k.containers_running)} running, ${bytes(k.containers_stopped)} stopped · logs ${bytes(k.logs)}`,
    )
    lines.push(
      `           build cache ${bytes(k.build_cache)} · volumes ${bytes(k.volumes_in_use)} in use, ` +
        `${bytes(k.volumes_dangling)} dangling · measured ${b.takenAt} in ${b.durationSeconds.toFixed(1)} s`,
    )
    for (const l of b.topLogs.slice(0, 3)) lines.push(`  log      ${bytes(l.logBytes)} ${l.name} (${l.state})`)
  }
  lines.push(`last prune    ${jobLine(s.lastPrune)}`)
  lines.push(`last prewarm  ${jobLine(s.lastPrewarm)}`)
  const link = s.coordinator.connected ? 'connected' : 'disconnected'
  lines.push(
    `coordinator   ${s.coordinator.configured ? `${link}, ${s.coordinator.pending} events pending` : 'not configured'}`,
  )
  if (s.coordinator.lastError) lines.push(`              ${s.coordinator.lastError}`)
  const failed = Object.entries(s.collectors).filter(([, c]) => !c.success)
  for (const [name, c] of failed) lines.push(`collector ${name} failing: ${c.error ?? 'unknown error'}`)
  // Collectors are listed above from `collectors`; here the components retrying their start (an
  // agent of an older version does not send the list).
  for (const c of s.failingComponents ?? []) {
    if (c.retryAt)
      lines.push(`component ${c.component} not started (${c.attempts} tries): ${c.error}; next try ${c.retryAt}`)
  }
  return lines.join('\n') + '\n'
}

function jobLine(job: Record<string, unknown> | null): string {
  if (!job) return 'none since the agent started'
  const parts = [String(job.ts ?? '')]
  if (job.trigger) parts.push(`trigger ${String(job.trigger)}`)
  if (typeof job.freedBytes === 'number') parts.push(`freed ${bytes(job.freedBytes)}`)
  if (job.result) parts.push(String(job.result))
  return parts.join(' · ')
}

/** 1536 → "1.5 KiB" */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let v = n
  let u = 0
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`
}

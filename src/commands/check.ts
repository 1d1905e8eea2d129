// gpuhost check: GPU facts from nvidia-smi (with the configured hard timeout) and a CUDA verdict
// for each local image, or for each --image. When the runtime (Docker or containerd) is unreachable
// it still prints the GPU facts, says so and what to do, judges no image, and exits 69.
import type { GlobalOptions } from './options.js'
import { buildCheckReport, checkExitCode, type CheckReport } from '../compat/check-report.js'
import { loadAgentConfig, type AgentConfig } from '../config.js'
import { createRuntime } from '../runtime/create.js'
import { runtimeUnreachableHint } from '../runtime/unreachable-hint.js'
import type { ContainerRuntime } from '../runtime/runtime.js'
import { readGpuFacts } from '../gpu/collector.js'
import { readNvidiaRuntime } from '../compat/nvidia-runtime-reader.js'
import { createRegistryClient } from '../registry/from-config.js'
import type { RemoteImageSource } from '../registry/types.js'
import { checkKubeletGc, prunePolicyOf, type KubeletGcReport } from '../prune/kubelet-gc.js'
import { readHostFacts } from '../inventory/host-facts.js'
import { hostSummary } from '../inventory/host-facts-map.js'
import type { HostFacts } from '../inventory/host-facts-schema.js'

/** The registry lookup for --image refs not on the host: mirrors, credentials and trust as prewarm uses them. */
function remoteImageSource(config: AgentConfig, runtime: ContainerRuntime): RemoteImageSource | null {
  return createRegistryClient(config, runtime)
}

export async function run(opts: { image?: string[] }, globals: GlobalOptions): Promise<number> {
  const config = loadAgentConfig(globals.config)
  const gpu = readGpuFacts({ nvidiaSmi: config.gpu.nvidiaSmi, timeoutMs: config.gpu.timeoutSeconds * 1000 })
  const runtime = createRuntime(config)
  const remote = remoteImageSource(config, runtime)
  const nvidiaRuntime = readNvidiaRuntime(runtime)
  // read while the images are judged; a part that fails is listed in host.unavailable
  const host = readHostFacts()
  const report = await buildCheckReport({
    gpu,
    runtime,
    refs: opts.image ?? [],
    remote,
    nvidiaRuntime,
    unreachableHint: (reason) => runtimeUnreachableHint(config, reason),
  })
  report.kubelet = checkKubeletGc(config.runtime.kubeletConfig, prunePolicyOf(config, runtime.kind))
  report.host = await host
  process.stdout.write(globals.json ? JSON.stringify(report, null, 2) + '\n' : renderReport(report))
  return checkExitCode(report)
}

const GIB = 1024 ** 3

function renderReport(report: CheckReport): string {
  const lines: string[] = []
  const g = report.gpu
  if (!g.available) lines.push(`GPU: unavailable: ${g.reason ?? 'unknown reason'}`)
  else {
    const gpus = `${g.gpus.length} GPU${g.gpus.length === 1 ? '' : 's'}`
    lines.push(`GPU: driver ${g.driverVersion ?? 'unknown'}, CUDA ${g.cudaVersion ?? 'unknown'}, ${gpus}`)
    lines.push(
      ...table(
        ['#', 'NAME', 'BRAND', 'CC', 'MEMORY', 'MIG', 'UUID'],
        g.gpus.map((d) => [
          String(d.index),
          d.name,
          d.brand ? `${d.brand} (${d.brandToken})` : '-',
          d.computeCapability ?? '-',
          d.memoryTotalBytes !== undefined ? `${(d.memoryTotalBytes / GIB).toFixed(1)} GiB` : '-',
          d.migMode ? `${d.migMode}${d.migDevices ? ` (${d.migDevices})` : ''}` : '-',
          d.uuid,
        ]),
      ).map((l) => '  ' + l),
    )
    if (g.computeCapabilityUnknown) lines.push(`  ${g.computeCapabilityUnknown}`)
  }
  const rt = report.nvidiaRuntime
  if (rt) lines.push(`NVIDIA runtime: ${rt.reason}; requirements ${rt.enforced ? 'enforced' : 'NOT enforced'} by it`)
  lines.push('')
  if (!report.docker.reachable) {
    lines.push(`${report.docker.kind === 'containerd' ? 'containerd' : 'Docker'}: ${report.docker.reason}`)
    if (report.docker.hint) lines.push(`  ${report.docker.hint}`)
  }
  if (report.images.length === 0) lines.push(report.docker.reachable ? 'No images.' : 'No image verdicts.')
  else {
    lines.push(
      ...table(
        ['IMAGE', 'VERDICT', 'KERNELS', 'REASON'],
        report.images.map((i) => [
          i.ref,
          i.unknown ? 'UNKNOWN' : i.compatible === null ? 'no verdict' : i.compatible ? 'compatible' : 'INCOMPATIBLE',
          i.kernels === 'missing' ? 'MISSING' : (i.kernels ?? '-'),
          i.kernels === 'missing' ? `${i.reason}; ${i.kernelsReason}` : i.reason,
        ]),
      ),
    )
  }
  if (report.kubelet) lines.push('', ...kubeletLines(report.kubelet))
  if (report.host) {
    if (lines[lines.length - 1] !== '') lines.push('')
    lines.push(...hostLines(report.host))
  }
  return lines.join('\n') + '\n'
}

/** the host facts as `check` prints them; a fact not known is `unknown` */
export function hostLines(h: HostFacts): string[] {
  const known = (v: string | number | undefined) => (v === undefined || v === '' ? 'unknown' : String(v))
  const { os, cpu, system } = hostSummary(h)
  const codename = h.os.codename ? ` (${h.os.codename})` : ''
  const virtual =
    h.system.virtual === undefined
      ? ''
      : h.system.virtual
        ? `, virtual${h.system.virtualHost ? ` (${h.system.virtualHost})` : ''}`
        : ', not virtual'
  const lines = [
    `Host: ${known(os)}${codename}, kernel ${known(h.os.kernel)}, ${known(h.os.arch)}`,
    `  CPU: ${known(cpu)}, ${known(h.cpu.cores)} cores (${known(h.cpu.physicalCores)} physical)`,
    `  Memory: ${h.memory.totalBytes !== undefined ? `${(h.memory.totalBytes / GIB).toFixed(1)} GiB` : 'unknown'}`,
    `  System: ${known(system)}${virtual}`,
  ]
  if (h.blockDevices.length > 0) {
    const rows = h.blockDevices.map((d) => [
      d.name,
      d.type ?? '-',
      d.sizeBytes !== undefined ? `${(d.sizeBytes / GIB).toFixed(1)} GiB` : '-',
      d.fsType ?? '-',
      d.mount ?? '-',
      [d.model, d.label].filter(Boolean).join(', ') || '-',
    ])
    lines.push(...table(['DEVICE', 'TYPE', 'SIZE', 'FSTYPE', 'MOUNT', 'MODEL/LABEL'], rows).map((l) => '  ' + l))
  }
  if (h.blockDevicesOmitted > 0) lines.push(`  (${h.blockDevicesOmitted} more block devices not listed)`)
  for (const u of h.unavailable) lines.push(`  ${u.part}: unavailable: ${u.reason}`)
  return lines
}

/** the kubelet's image GC as `check` and `status` print it; nothing when there is no kubelet */
export function kubeletLines(k: KubeletGcReport): string[] {
  if (!k.found && !k.error) return []
  const lines: string[] = []
  const t = k.thresholds
  if (t) {
    const maxAge = t.maximumAgeSeconds > 0 ? `${t.maximumAgeSeconds} s` : 'off'
    lines.push(
      `kubelet image GC (${k.path}): high ${t.highPercent} %, low ${t.lowPercent} %, ` +
        `minimum age ${t.minimumAgeSeconds} s, maximum age ${maxAge}`,
    )
  }
  for (const w of k.warnings) lines.push(`  WARNING: ${w}`)
  return lines
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)))
  // The last column is free text: it is not padded.
  const line = (cells: string[]) =>
    cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')
  return [line(header), ...rows.map(line)]
}

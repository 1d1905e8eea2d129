// Whether NVIDIA's container runtime on this host would itself refuse a container whose
// NVIDIA_REQUIRE_* does not hold (`enforced`). Only its legacy path checks them: the
// nvidia-container-runtime in mode "legacy" (or "csv" on Tegra), and `docker --gpus` through the
// hook, which works only in legacy mode. In "cdi" and "jit-cdi" modes nothing checks them
// (NVIDIA/nvidia-container-toolkit#1470). Mode "auto" resolves to "jit-cdi" from toolkit v1.18.0
// (its new default, NVIDIA/nvidia-container-toolkit#1224) and to "legacy" before; with the toolkit
// version unknown, "auto" is not counted as enforced. Pure: the reader gathers the inputs.
import type { NvidiaRuntimeFacts } from '../core/snapshot.js'
import { compareVersions } from './version.js'

export interface NvidiaRuntimeInputs {
  /** Docker's runtimes by name (docker info Runtimes); null when Docker was not reachable */
  dockerRuntimes: string[] | null
  defaultRuntime: string | null
  /** the text of /etc/nvidia-container-runtime/config.toml; null when absent */
  configToml: string | null
  /** the NVIDIA Container Toolkit version (`nvidia-ctk --version`); null when unknown */
  toolkitVersion: string | null
  /** CDI spec files found in /etc/cdi and /var/run/cdi */
  cdiSpecs: string[]
}

/** The first toolkit release whose "auto" mode is jit-cdi. */
export const JIT_CDI_DEFAULT_FROM = '1.18.0'
const ENFORCING_MODES = ['legacy', 'csv']

export function judgeNvidiaRuntime(inputs: NvidiaRuntimeInputs): NvidiaRuntimeFacts {
  const dockerRuntimes = (inputs.dockerRuntimes ?? []).filter((r) => r.toLowerCase().includes('nvidia')).sort()
  const installed = dockerRuntimes.length > 0 || inputs.configToml !== null
  const base = {
    installed,
    dockerRuntimes,
    defaultRuntime: inputs.defaultRuntime,
    toolkitVersion: inputs.toolkitVersion,
    cdiSpecs: inputs.cdiSpecs,
  }
  if (!installed) {
    return {
      ...base,
      mode: null,
      effectiveMode: 'unknown',
      enforced: false,
      reason: 'no NVIDIA container runtime registered with Docker and no config.toml: nothing checks NVIDIA_REQUIRE_*',
    }
  }
  const mode = inputs.configToml === null ? null : runtimeMode(inputs.configToml)
  const configured = mode ?? 'auto'
  const effectiveMode = configured === 'auto' ? autoMode(inputs.toolkitVersion) : configured
  const enforced = ENFORCING_MODES.includes(effectiveMode)
  const version = inputs.toolkitVersion
  const resolved = effectiveMode === 'unknown' ? 'toolkit version unknown' : `toolkit ${version}: ${effectiveMode}`
  const how = configured === 'auto' ? `mode auto (${resolved})` : `mode ${configured}`
  const reason = enforced
    ? `${how}: the runtime refuses a container whose NVIDIA_REQUIRE_* does not hold`
    : effectiveMode === 'unknown'
      ? `${how}: cannot tell whether the runtime checks NVIDIA_REQUIRE_*, so it is not counted on`
      : `${how}: the runtime does not check NVIDIA_REQUIRE_*; gpuhost's verdict is the only check`
  return { ...base, mode, effectiveMode, enforced, reason }
}

function autoMode(toolkitVersion: string | null): string {
  if (toolkitVersion === null) return 'unknown'
  const newer = compareVersions(toolkitVersion, '>=', JIT_CDI_DEFAULT_FROM)
  return newer === null ? 'unknown' : newer ? 'jit-cdi' : 'legacy'
}

/** `mode = "…"` in the [nvidia-container-runtime] table of config.toml; null when not set there. */
export function runtimeMode(toml: string): string | null {
  let table = ''
  for (const raw of toml.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim()
    const header = /^\[([^\]]+)\]$/.exec(line)
    if (header) {
      table = header[1].trim().replace(/^"(.*)"$/, '$1')
      continue
    }
    const kv = /^mode\s*=\s*["']([^"']*)["']$/.exec(line)
    if (kv && table === 'nvidia-container-runtime') return kv[1]
  }
  return null
}

/** "NVIDIA Container Toolkit CLI version 1.17.8" (and a commit line) → "1.17.8" */
export function parseToolkitVersion(output: string): string | null {
  return /version\s+v?(\d+\.\d+\.\d+)/i.exec(output)?.[1] ?? null
}

// Gathers what judgeNvidiaRuntime needs: Docker's runtimes (docker info, through the container
// runtime), the toolkit's config.toml,
// `nvidia-ctk --version`, and the CDI spec files. Every path is an option so tests use their own.
// Nothing here throws: a missing piece is null or empty.
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ContainerRuntime } from '../runtime/runtime.js'
import type { NvidiaRuntimeFacts } from '../core/snapshot.js'
import { judgeNvidiaRuntime, parseToolkitVersion } from './nvidia-runtime.js'

export interface NvidiaRuntimePaths {
  configToml: string
  cdiDirs: string[]
  nvidiaCtk: string
}

export const DEFAULT_RUNTIME_PATHS: NvidiaRuntimePaths = {
  configToml: '/etc/nvidia-container-runtime/config.toml',
  cdiDirs: ['/etc/cdi', '/var/run/cdi'],
  nvidiaCtk: 'nvidia-ctk',
}

const VERSION_TIMEOUT_MS = 5000

/** `runtime`: the container runtime to ask for its OCI runtimes; null or unreachable: not known */
export async function readNvidiaRuntime(
  runtime: Pick<ContainerRuntime, 'ociRuntimes'> | null,
  paths: NvidiaRuntimePaths = DEFAULT_RUNTIME_PATHS,
): Promise<NvidiaRuntimeFacts> {
  const [oci, configToml, toolkitVersion, cdiSpecs] = await Promise.all([
    runtime?.ociRuntimes ? runtime.ociRuntimes().catch(() => null) : null,
    readFile(paths.configToml, 'utf8').catch(() => null),
    toolkitVersionOf(paths.nvidiaCtk),
    cdiSpecFiles(paths.cdiDirs),
  ])
  return judgeNvidiaRuntime({
    dockerRuntimes: oci ? oci.names : null,
    defaultRuntime: oci?.defaultRuntime ?? null,
    configToml,
    toolkitVersion,
    cdiSpecs,
  })
}

function toolkitVersionOf(nvidiaCtk: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(nvidiaCtk, ['--version'], { timeout: VERSION_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err, stdout) => {
      resolve(err ? null : parseToolkitVersion(stdout))
    })
  })
}

async function cdiSpecFiles(dirs: string[]): Promise<string[]> {
  const found: string[] = []
  for (const dir of dirs) {
    const names = await readdir(dir).catch(() => [] as string[])
    for (const n of names.sort()) if (/\.(json|ya?ml)$/.test(n)) found.push(join(dir, n))
  }
  return found
}

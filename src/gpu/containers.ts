// Which container holds GPU memory: nvidia-smi lists the processes on each GPU with their pid and
// used memory; /proc/PID/cgroup names the cgroup, and Docker's cgroup of a container ends in its
// 64-hex id ("/docker/<id>" with the cgroupfs driver, "/system.slice/docker-<id>.scope" with
// systemd, either under cgroup v1 or v2). A pid in no container (the host's Xorg) maps to null.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { GpuFacts } from '../core/snapshot.js'

const DOCKER_ID = /(?:docker[-/]|\/)([0-9a-f]{64})(?:\.scope)?\s*$/m

/** the Docker container id in a /proc/PID/cgroup text; null when the process is in none */
export function containerIdFromCgroup(cgroup: string): string | null {
  for (const line of cgroup.split('\n')) {
    const path = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1)
    const m = DOCKER_ID.exec(path)
    if (m) return m[1]
  }
  return null
}

/**
 * Adds containerId to each process nvidia-smi listed (a copy: the facts are shared); `hidden`: how
 * many of them have no /proc entry. All of them hidden means this /proc does not show the host's
 * processes (systemd's ProtectProc=invisible, a container without the host's PID namespace), not
 * that they all exited since nvidia-smi ran.
 */
export async function withProcessContainers(
  facts: GpuFacts,
  procRoot = '/proc',
): Promise<{ facts: GpuFacts; listed: number; hidden: number }> {
  let listed = 0
  let hidden = 0
  if (!facts.gpus.some((g) => g.processes?.length)) return { facts, listed, hidden }
  const gpus = await Promise.all(
    facts.gpus.map(async (g) => {
      if (!g.processes?.length) return g
      const processes = await Promise.all(
        g.processes.map(async (p) => {
          listed++
          const cgroup = await readFile(join(procRoot, String(p.pid), 'cgroup'), 'utf8').catch(
            (err: NodeJS.ErrnoException) => {
              if (err.code === 'ENOENT') hidden++
              return null
            },
          )
          const id = cgroup === null ? null : containerIdFromCgroup(cgroup)
          return id === null ? p : { ...p, containerId: id }
        }),
      )
      return { ...g, processes }
    }),
  )
  return { facts: { ...facts, gpus }, listed, hidden }
}

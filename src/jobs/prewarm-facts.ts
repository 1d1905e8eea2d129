// The facts a prewarm needs from this host, read fresh just before it plans: the local images
// with their RepoDigests, the disk that holds Docker's data, and dockerd's registry trust settings.
import { statfs } from 'node:fs/promises'
import type { Docker } from '../host/docker.js'
import type { DiskFacts } from '../host/snapshot.js'
import type { RegistryTrust } from '../registry/insecure.js'
import type { LocalImage } from './prewarm-plan.js'

export interface PrewarmHostFacts {
  local: LocalImage[]
  disk: DiskFacts | null
  trust: RegistryTrust
}

export async function measureDisk(path: string): Promise<DiskFacts> {
  const s = await statfs(path)
  const sizeBytes = s.blocks * s.bsize
  const usedBytes = (s.blocks - s.bfree) * s.bsize
  const availBytes = s.bavail * s.bsize
  const usable = usedBytes + availBytes
  return { path, mountpoint: path, sizeBytes, usedBytes, availBytes, usedPercent: usable > 0 ? (usedBytes / usable) * 100 : 0 }
}

export class DockerUnreachableError extends Error {
  constructor(reason: string) {
    super(`Docker is unreachable: ${reason}`)
    this.name = 'DockerUnreachableError'
  }
}

/** Throws DockerUnreachableError when Docker cannot be reached: without it nothing can be pulled. */
export async function readPrewarmFacts(docker: Docker, diskPath: string | null): Promise<PrewarmHostFacts> {
  let info: { DockerRootDir?: string; RegistryConfig?: RegistryTrust }
  try {
    info = await docker.info()
  } catch (err) {
    throw new DockerUnreachableError((err as Error).message)
  }
  const images = await docker.listImages()
  const local = images.map((i) => ({ id: i.Id, repoTags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'), repoDigests: (i.RepoDigests ?? []).filter((d) => !d.startsWith('<none>')) }))
  const path = diskPath ?? info.DockerRootDir ?? null
  const disk = path ? await measureDisk(path).catch(() => null) : null
  return { local, disk, trust: info.RegistryConfig ?? {} }
}

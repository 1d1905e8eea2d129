// The facts a prewarm needs from this host, read fresh just before it plans (the snapshot may be a
// minute old, and a prune may just have run): the local images with their RepoDigests, the disk
// that holds Docker's data measured as the disk collector does, and dockerd's registry trust.
import { UnavailableError } from '../errors.js'
import { measureDisk } from '../inventory/disk.js'
import type { Docker } from '../runtime/docker-client.js'
import type { DiskFacts } from '../agent/snapshot.js'
import type { RegistryTrust } from '../registry/insecure.js'
import type { LocalImage } from './plan.js'

export interface PrewarmHostFacts {
  local: LocalImage[]
  disk: DiskFacts | null
  trust: RegistryTrust
}

export class DockerUnreachableError extends UnavailableError {
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

// The facts a prewarm needs from this host, read fresh just before it plans (the snapshot may be a
// minute old, and a prune may just have run): the local images with their RepoDigests, the disk
// that holds the runtime's data measured as the disk collector does, and the runtime's registry trust.
import { UnavailableError } from '../errors.js'
import { measureDisk } from '../inventory/disk.js'
import type { ContainerRuntime } from '../runtime/runtime.js'
import type { DiskFacts } from '../core/snapshot.js'
import type { RegistryTrust } from '../registry/insecure.js'
import type { LocalImage } from './plan.js'

export interface PrewarmHostFacts {
  local: LocalImage[]
  disk: DiskFacts | null
  trust: RegistryTrust
}

/** the container runtime (Docker or containerd) cannot be reached; the message names which */
export class DockerUnreachableError extends UnavailableError {
  constructor(message: string) {
    super(message)
    this.name = 'DockerUnreachableError'
  }
}

/** Throws DockerUnreachableError when Docker cannot be reached: without it nothing can be pulled. */
export async function readPrewarmFacts(runtime: ContainerRuntime, diskPath: string | null): Promise<PrewarmHostFacts> {
  let trust: RegistryTrust
  let path: string
  try {
    trust = await runtime.registryTrust()
    path = diskPath ?? (await runtime.rootDir())
  } catch (err) {
    // the runtime's own error already says which engine is unreachable; anything else is said so here
    const message = (err as Error).message
    const engine = runtime.kind === 'containerd' ? 'containerd' : 'Docker'
    throw new DockerUnreachableError(
      / is unreachable\b/.test(message) ? message : `${engine} is unreachable: ${message}`,
    )
  }
  const { images } = await runtime.listImagesWithContainers()
  const local = images.map((i) => ({
    id: i.id,
    repoTags: i.repoTags,
    repoDigests: i.repoDigests.filter((d) => !d.startsWith('<none>')),
  }))
  const disk = await measureDisk(path).catch(() => null)
  return { local, disk, trust }
}

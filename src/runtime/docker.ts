// The Docker implementation of the container runtime, on dockerode: one client, built here, over
// one connection to dockerd that negotiates the API version. Connection failures (refused, reset,
// timed out) are thrown as RuntimeUnavailableError and mark Docker unreachable; every other error
// passes as Docker said it.
import type Dockerode from 'dockerode'
import type { Readable } from 'node:stream'
import type { AgentConfig } from '../config.js'
import type { RegistryTrust } from '../registry/insecure.js'
import { DockerConnection } from './docker-connection.js'
import { dockerodeOptions, isConnectionError, messageOf, pathPart, statusOf, type DockerApi } from './docker-api.js'
import { openDockerEvents } from './docker-events.js'
import { dockerDiskUsage } from './docker-disk.js'
import { loadImage, saveImage } from './docker-transfer.js'
import { dockerPull, PullProgressTracker } from './pull.js'
import { RemovalJournal } from './removal-journal.js'
import { removeImage, restoreInterrupted } from './remove-image.js'
import {
  RuntimeUnavailableError,
  type ContainerRuntime,
  type ImageDetails,
  type LoadResult,
  type OpenEvents,
  type PullRequest,
  type RemoveHooks,
  type RemoveOutcome,
  type RuntimeContainer,
  type RuntimeDiskUsage,
  type RuntimeEventHandlers,
  type RuntimeHealth,
  type RuntimeImage,
} from './runtime.js'

/**
 * The one dockerode client: loaded at the first call, so an agent on containerd never loads it.
 * Without docker.socket it reaches Docker where DOCKER_HOST says (unix, tcp with TLS, ssh).
 */
async function makeDockerode(config: Pick<AgentConfig, 'docker'>): Promise<Dockerode> {
  const { default: Docker } = await import('dockerode')
  return new Docker(dockerodeOptions(config.docker.socket))
}

export class DockerRuntime implements ContainerRuntime {
  readonly kind = 'docker'
  readonly connection: DockerConnection
  private readonly journal: RemovalJournal
  /** names this process is pulling now: a removal never takes them off */
  private readonly pulling = new Map<string, number>()

  constructor(private readonly config: Pick<AgentConfig, 'docker' | 'stateDir'>) {
    this.connection = new DockerConnection(config, () => makeDockerode(config))
    this.journal = new RemovalJournal(config.stateDir)
  }

  health(): RuntimeHealth {
    return this.connection.health()
  }

  onHealthChange(listener: (h: RuntimeHealth) => void): () => void {
    return this.connection.onHealthChange(listener)
  }

  /** /_ping with its own deadline: a frozen dockerd accepts the connection and never answers */
  async ping(): Promise<void> {
    const ms = this.config.docker.pingTimeoutSeconds * 1000
    try {
      const api = await this.connection.pingClient()
      await api.signalled.ping({ abortSignal: AbortSignal.timeout(ms) })
    } catch (err) {
      const reason =
        (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError'
          ? `no answer to a ping within ${this.config.docker.pingTimeoutSeconds} s`
          : messageOf(err)
      const down = new RuntimeUnavailableError(`Docker is unreachable: ${reason}`, err)
      this.connection.markUnreachable(new Error(reason))
      throw down
    }
    // It answers again after being away: negotiate afresh (it may be another version now).
    if (!this.connection.health().reachable) await this.call((d) => Promise.resolve(d))
  }

  async listImagesWithContainers(): Promise<{ images: RuntimeImage[]; containers: RuntimeContainer[] }> {
    return this.call(async (api) => {
      const [images, containers] = await Promise.all([
        // shared-size is honoured from API 1.42 on; older daemons leave SharedSize at -1.
        api.within('GET /images/json', (abortSignal) =>
          api.docker.listImages({ 'shared-size': true, abortSignal } as Dockerode.ListImagesOptions),
        ),
        api.within('GET /containers/json', (abortSignal) => api.docker.listContainers({ all: true, abortSignal })),
      ])
      return { images: images.map(toRuntimeImage), containers: containers.map(toRuntimeContainer) }
    })
  }

  async containerFinishedAt(id: string): Promise<string | null> {
    return this.call(async (api) => {
      try {
        const info = await api.within('GET /containers/{id}/json', (abortSignal) =>
          api.docker.getContainer(pathPart(id)).inspect({ abortSignal }),
        )
        return info.State?.FinishedAt ?? null
      } catch (err) {
        if (statusOf(err) === 404) return null
        throw err
      }
    })
  }

  async inspectImage(ref: string): Promise<ImageDetails | null> {
    return this.call(async (api) => {
      try {
        const info = await api.inspectImage(ref)
        const lastTagTime = info.Metadata?.LastTagTime
        return {
          id: info.Id,
          repoTags: (info.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
          repoDigests: (info.RepoDigests ?? []).filter((d) => !d.startsWith('<none>@')),
          env: info.Config?.Env ?? [],
          lastTagTime: lastTagTime && !lastTagTime.startsWith('0001-01-01') ? lastTagTime : null,
        }
      } catch (err) {
        if (statusOf(err) === 404) return null
        throw err
      }
    })
  }

  async removeImage(image: { id: string; refs: string[] }, hooks?: RemoveHooks): Promise<RemoveOutcome> {
    return this.call((api) =>
      removeImage({ api, journal: this.journal, isPulling: (ref) => this.pulling.has(ref) }, image, hooks),
    )
  }

  async tagImage(source: string, target: string): Promise<void> {
    const colon = target.lastIndexOf(':')
    const hasTag = colon > target.lastIndexOf('/')
    const repo = hasTag ? target.slice(0, colon) : target
    const tag = hasTag ? target.slice(colon + 1) : 'latest'
    await this.call((api) =>
      api.within('POST /images/{name}/tag', (abortSignal) =>
        api.docker.getImage(pathPart(source)).tag({ repo, tag, abortSignal }),
      ),
    )
  }

  async untagImage(ref: string): Promise<void> {
    // noprune: only the name goes; never forced, so an image that holds no other name stays.
    await this.call((api) =>
      api.within('DELETE /images/{name}', (abortSignal) =>
        api.docker.getImage(pathPart(ref)).remove({ force: false, noprune: true, abortSignal }),
      ),
    )
  }

  async pull(req: PullRequest): Promise<void> {
    const names = [`${req.name}:${req.reference}`, `${req.name}@${req.reference}`]
    for (const n of names) this.pulling.set(n, (this.pulling.get(n) ?? 0) + 1)
    try {
      await this.connection.connect().catch((err) => {
        throw unavailable(err)
      })
      const tracker = new PullProgressTracker(req.layers, req.totalBytes)
      await dockerPull(await this.connection.client(), {
        name: req.name,
        reference: req.reference,
        auth: req.auth,
        signal: req.signal,
        onEvent: (e) => {
          tracker.update(e)
          req.onProgress(tracker.get())
        },
      })
    } finally {
      for (const n of names) {
        const left = (this.pulling.get(n) ?? 1) - 1
        if (left > 0) this.pulling.set(n, left)
        else this.pulling.delete(n)
      }
    }
  }

  async openEvents(opts: { since?: number; signal: AbortSignal }, handlers: RuntimeEventHandlers): Promise<OpenEvents> {
    const api = await this.connection.client().catch((err) => {
      throw unavailable(err)
    })
    const opened = await openDockerEvents(api, opts, handlers)
    // The daemon that closed the stream may come back as another version: negotiate again.
    return {
      ended: opened.ended.then((reason) => {
        this.connection.forget()
        return reason
      }),
    }
  }

  rootDir(): Promise<string> {
    return this.connection.rootDir()
  }

  async registryTrust(): Promise<RegistryTrust> {
    return this.call(
      async (api) =>
        (await api.within('GET /info', (abortSignal) => api.signalled.info({ abortSignal }))).RegistryConfig ?? {},
    )
  }

  async ociRuntimes(): Promise<{ names: string[]; defaultRuntime: string | null }> {
    return this.call(async (api) => {
      const info = await api.within('GET /info', (abortSignal) => api.signalled.info({ abortSignal }))
      return { names: Object.keys(info.Runtimes ?? {}), defaultRuntime: info.DefaultRuntime ?? null }
    })
  }

  /** SharedSize of every image from /system/df, which walks every layer: once per prune at most */
  async sharedSizes(): Promise<Map<string, number>> {
    return this.call(async (api) => {
      const df = (await api.within('GET /system/df', (abortSignal) => api.signalled.df({ abortSignal }))) as {
        Images?: { Id: string; SharedSize?: number }[] | null
      }
      return new Map(
        (df.Images ?? []).filter((i) => typeof i.SharedSize === 'number').map((i) => [i.Id, i.SharedSize!]),
      )
    })
  }

  async diskUsage(): Promise<RuntimeDiskUsage> {
    return this.call((api) => dockerDiskUsage(api))
  }

  async removeContainer(id: string): Promise<RemoveOutcome> {
    // Never forced, and its volumes stay: Docker refuses a running container (409).
    return this.call((api) =>
      removal(() =>
        api.within('DELETE /containers/{id}', (abortSignal) =>
          api.docker.getContainer(pathPart(id)).remove({ force: false, v: false, abortSignal }),
        ),
      ),
    )
  }

  async removeVolume(name: string): Promise<RemoveOutcome> {
    // Never forced: Docker refuses a volume a container (even a stopped one) refers to (409).
    return this.call((api) =>
      removal(() =>
        api.within('DELETE /volumes/{name}', (abortSignal) =>
          api.docker.getVolume(pathPart(name)).remove({ force: false, abortSignal }),
        ),
      ),
    )
  }

  async pruneBuildCache(): Promise<{ reclaimedBytes: number }> {
    return this.call(async (api) => {
      const pruned = await api.within('POST /build/prune', (abortSignal) => api.docker.pruneBuilder({ abortSignal }))
      return { reclaimedBytes: pruned?.SpaceReclaimed ?? 0 }
    })
  }

  async saveImage(id: string): Promise<Readable | null> {
    return this.call((api) => saveImage(api, id))
  }

  async loadImage(archive: Readable, signal?: AbortSignal): Promise<LoadResult> {
    return this.call((api) => loadImage(api, archive, signal))
  }

  hasInterruptedRemovals(): boolean {
    return Object.keys(this.journal.pending()).length > 0
  }

  async recoverInterruptedRemovals(): Promise<string[]> {
    if (!this.hasInterruptedRemovals()) return []
    return this.call((api) => restoreInterrupted(api, this.journal))
  }

  /** one call over the negotiated connection; a lost connection becomes RuntimeUnavailableError */
  private async call<T>(fn: (api: DockerApi) => Promise<T>): Promise<T> {
    let api: DockerApi
    try {
      api = await this.connection.client()
    } catch (err) {
      throw unavailable(err)
    }
    try {
      return await fn(api)
    } catch (err) {
      if (err instanceof RuntimeUnavailableError) {
        this.connection.markUnreachable(err)
        throw err
      }
      if (isConnectionError(err)) {
        const down = unavailable(err)
        this.connection.markUnreachable(new Error(messageOf(err)))
        throw down
      }
      // Docker's own words ({"message": …}) rather than the client's wrapping of them.
      throw Object.assign(new Error(messageOf(err)), { cause: err, statusCode: statusOf(err) })
    }
  }
}

function unavailable(err: unknown): RuntimeUnavailableError {
  if (err instanceof RuntimeUnavailableError) return err
  return new RuntimeUnavailableError(`Docker is unreachable: ${messageOf(err)}`, err)
}

// @types/dockerode types lists as always present; Docker sends null for an empty one.
function toRuntimeImage(i: Dockerode.ImageInfo): RuntimeImage {
  return {
    id: i.Id,
    repoTags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
    repoDigests: (i.RepoDigests ?? []).filter((d) => d !== '<none>@<none>'),
    sizeBytes: i.Size,
    sharedSizeBytes: typeof i.SharedSize === 'number' ? i.SharedSize : -1,
    createdAt: i.Created,
    labels: i.Labels ?? {},
  }
}

function toRuntimeContainer(c: Dockerode.ContainerInfo): RuntimeContainer {
  return { id: c.Id, names: c.Names ?? [], imageId: c.ImageID, state: c.State, createdAt: c.Created }
}

/** a removal's outcome: gone already (404) and refused (409) are skipped; a lost connection is thrown */
async function removal(remove: () => Promise<unknown>): Promise<RemoveOutcome> {
  try {
    await remove()
    return { outcome: 'removed' }
  } catch (err) {
    const status = statusOf(err)
    if (status === 404) return { outcome: 'skipped', reason: 'gone already' }
    if (status === 409) return { outcome: 'skipped', reason: messageOf(err) }
    if (isConnectionError(err)) throw err
    return { outcome: 'failed', reason: messageOf(err) }
  }
}

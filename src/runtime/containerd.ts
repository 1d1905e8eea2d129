// The containerd implementation of the container runtime, over containerd's gRPC socket in one
// namespace. Pulls go through the CRI ImageService, so they use the CRI's registry config
// (hosts.toml) and unpack as the kubelet's would; everything CRI does not say is read from
// containerd's own services: every container (CRI lists only the kubelet's), image records and
// labels, content and snapshot sizes, tasks and events. docs/architecture.md says why. The jobs are
// the containerd-*.ts modules beside this one: the view of the store, pulls, removals, names and
// pins, disk accounting, events, health.
import { dirname } from 'node:path'
import type { AgentConfig } from '../config.js'
import { DOCKERD_DEFAULT_TRUST, type RegistryTrust } from '../registry/insecure.js'
import { ContainerdClient, timestampMs } from './containerd-client.js'
import { containerdDiskUsage } from './containerd-disk.js'
import { openContainerdEvents } from './containerd-events.js'
import { ContainerdHealth } from './containerd-health.js'
import { ImageStoreReader } from './containerd-images.js'
import { ContainerdPulls } from './containerd-pull.js'
import { ContainerdRemovals } from './containerd-removal.js'
import { pinWanted, tagImage, untagImage } from './containerd-tags.js'
import { findImage, readStoreView, type ContainerdAccess, type StoreView } from './containerd-view.js'
import type { WireTask } from './containerd-wire.js'
import type {
  ContainerRuntime,
  ImageDetails,
  OpenEvents,
  PullRequest,
  RemoveHooks,
  RemoveOutcome,
  RuntimeContainer,
  RuntimeDiskUsage,
  RuntimeEventHandlers,
  RuntimeHealth,
  RuntimeImage,
} from './runtime.js'

export const DEFAULT_CONTAINERD_SOCKET = '/run/containerd/containerd.sock'

export class ContainerdRuntime implements ContainerRuntime {
  readonly kind = 'containerd'
  readonly client: ContainerdClient
  private readonly reader: ImageStoreReader
  private readonly healthState = new ContainerdHealth()
  private readonly access: ContainerdAccess
  private readonly pulls: ContainerdPulls
  private readonly removals: ContainerdRemovals
  /** container id → image name, for task events that name only the container */
  private readonly containerImages = new Map<string, string>()

  constructor(private readonly config: Pick<AgentConfig, 'docker' | 'runtime' | 'stateDir'>) {
    this.client = new ContainerdClient(
      config.runtime.socket ?? DEFAULT_CONTAINERD_SOCKET,
      config.runtime.namespace,
      config.docker.timeoutSeconds * 1000,
    )
    this.reader = new ImageStoreReader(this.client)
    this.access = {
      client: this.client,
      call: (fn) => this.healthState.call(fn),
      view: () => this.view(),
    }
    this.pulls = new ContainerdPulls(this.client, (err) => this.healthState.markUnreachable(err))
    this.removals = new ContainerdRemovals(this.access, config.stateDir, (name) => this.pulls.isPulling(name))
  }

  health(): RuntimeHealth {
    return this.healthState.get()
  }

  onHealthChange(listener: (h: RuntimeHealth) => void): () => void {
    return this.healthState.onChange(listener)
  }

  async ping(): Promise<void> {
    const version = await this.call(() =>
      this.client.call<{ version: string }>(
        'version',
        'Version',
        {},
        { deadlineMs: this.config.docker.pingTimeoutSeconds * 1000 },
      ),
    )
    const rootDir = await this.rootDir().catch(() => this.healthState.lastRootDir ?? undefined)
    this.healthState.set({ reachable: true, version: version.version, rootDir })
  }

  async listImagesWithContainers(): Promise<{ images: RuntimeImage[]; containers: RuntimeContainer[] }> {
    const view = await this.view()
    return {
      images: view.images.map(({ records: _r, resolved: _v, ...image }) => image),
      containers: view.containers.map(({ listed: _l, exitedAtMs: _e, ...c }) => c),
    }
  }

  async containerFinishedAt(id: string): Promise<string | null> {
    const tasks = await this.call(() => this.client.call<{ tasks?: WireTask[] }>('tasks', 'List', { filter: '' }))
    const task = (tasks.tasks ?? []).find((t) => t.containerId === id && t.status === 3)
    const ms = task ? timestampMs(task.exitedAt) : null
    return ms === null ? null : new Date(ms).toISOString()
  }

  async inspectImage(ref: string): Promise<ImageDetails | null> {
    const view = await this.view()
    const image = findImage(view, ref)
    if (!image) return null
    const lastTag = Math.max(...image.records.map((r) => r.updatedAtMs ?? r.createdAtMs ?? 0))
    return {
      id: image.id,
      repoTags: image.repoTags,
      repoDigests: image.repoDigests,
      env: image.resolved.env,
      lastTagTime: lastTag > 0 ? new Date(lastTag).toISOString() : null,
    }
  }

  removeImage(target: { id: string; refs: string[] }, hooks?: RemoveHooks): Promise<RemoveOutcome> {
    return this.removals.removeImage(target, hooks)
  }

  tagImage(source: string, target: string): Promise<void> {
    return tagImage(this.access, source, target)
  }

  untagImage(ref: string): Promise<void> {
    return untagImage(this.access, ref)
  }

  pull(req: PullRequest): Promise<void> {
    return this.pulls.pull(req)
  }

  async openEvents(opts: { since?: number; signal: AbortSignal }, handlers: RuntimeEventHandlers): Promise<OpenEvents> {
    await this.ping()
    return openContainerdEvents(
      this.client,
      opts,
      handlers,
      (id) => this.containerImages.get(id),
      (id, image) => this.containerImages.set(id, image),
    )
  }

  /** containerd's root: the parent of the snapshotter's directory that CRI reports as the image filesystem */
  async rootDir(): Promise<string> {
    const res = await this.call(() =>
      this.client.call<{ imageFilesystems?: { fsId?: { mountpoint?: string } }[] }>('criImages', 'ImageFsInfo', {}),
    )
    const mountpoint = res.imageFilesystems?.[0]?.fsId?.mountpoint
    if (!mountpoint) throw new Error('containerd reports no image filesystem')
    this.healthState.lastRootDir = dirname(mountpoint)
    return this.healthState.lastRootDir
  }

  /** containerd decides per registry from its hosts.toml; the agent's own look-ups trust loopback only */
  async registryTrust(): Promise<RegistryTrust> {
    return DOCKERD_DEFAULT_TRUST
  }

  async sharedSizes(): Promise<Map<string, number>> {
    const view = await this.view()
    return new Map(view.images.map((i) => [i.id, i.sharedSizeBytes]))
  }

  async diskUsage(): Promise<RuntimeDiskUsage> {
    return containerdDiskUsage(await this.view(), this.reader)
  }

  removeContainer(id: string): Promise<RemoveOutcome> {
    return this.removals.removeContainer(id)
  }

  pinWanted(refs: string[]): Promise<{ pinned: string[]; unpinned: string[] }> {
    return pinWanted(this.access, refs)
  }

  async pruneBuildCache(): Promise<{ reclaimedBytes: number }> {
    return { reclaimedBytes: 0 }
  }

  hasInterruptedRemovals(): boolean {
    return this.removals.hasInterrupted()
  }

  recoverInterruptedRemovals(): Promise<string[]> {
    return this.removals.recoverInterrupted()
  }

  /** images, containers and tasks read together, with every image's shared bytes accounted */
  private view(): Promise<StoreView> {
    return this.call(() => readStoreView(this.client, this.reader, this.containerImages))
  }

  private call<T>(fn: () => Promise<T>): Promise<T> {
    return this.healthState.call(fn)
  }
}

// The containerd implementation of the container runtime, over containerd's gRPC socket in one
// namespace. Pulls go through the CRI ImageService, so they use the CRI's registry config
// (hosts.toml) and unpack as the kubelet's would; everything CRI does not say is read from
// containerd's own services: every container (CRI lists only the kubelet's), image records and
// labels, content and snapshot sizes, tasks and events. docs/architecture.md says why.
import { dirname } from 'node:path'
import type { AgentConfig } from '../config.js'
import { DOCKERD_DEFAULT_TRUST, type RegistryTrust } from '../registry/insecure.js'
import { familiarRef, qualifiedRef } from '../registry/reference.js'
import { accountImages } from './containerd-accounting.js'
import { ContainerdClient, isNotFound, timestampMs } from './containerd-client.js'
import { openContainerdEvents } from './containerd-events.js'
import type { WireContainer, WireContentStatus, WireCriImage, WireTask } from './containerd-wire.js'
import {
  ImageStoreReader,
  PINNED_BY_LABEL,
  PINNED_LABEL,
  type ImageRecord,
  type ResolvedImage,
} from './containerd-images.js'
import { RemovalJournal } from './removal-journal.js'
import {
  PullError,
  RuntimeUnavailableError,
  type ContainerRuntime,
  type ImageDetails,
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

export const DEFAULT_CONTAINERD_SOCKET = '/run/containerd/containerd.sock'

/** containerd.v1.types.Status */
const TASK_STATES: Record<number, string> = { 1: 'created', 2: 'running', 3: 'exited', 4: 'paused', 5: 'paused' }

interface ListedContainer {
  id: string
  image: string
  labels: Record<string, string>
  snapshotter: string
  snapshotKey: string
  createdAtMs: number | null
}

/** one read of the image store, containers and tasks, with the accounting done */
interface StoreView {
  images: (RuntimeImage & { records: ImageRecord[]; resolved: ResolvedImage; pinned: boolean })[]
  containers: (RuntimeContainer & { listed: ListedContainer; exitedAtMs: number | null })[]
  uniqueBytes: number
}

export class ContainerdRuntime implements ContainerRuntime {
  readonly kind = 'containerd'
  readonly client: ContainerdClient
  private readonly reader: ImageStoreReader
  private readonly journal: RemovalJournal
  private readonly pulling = new Map<string, number>()
  private readonly listeners = new Set<(h: RuntimeHealth) => void>()
  private current: RuntimeHealth = { reachable: false, reason: 'not collected yet' }
  private lastRootDir: string | null = null
  /** container id → image name, for task events that name only the container */
  private readonly containerImages = new Map<string, string>()

  constructor(private readonly config: Pick<AgentConfig, 'docker' | 'runtime' | 'stateDir'>) {
    this.client = new ContainerdClient(
      config.runtime.socket ?? DEFAULT_CONTAINERD_SOCKET,
      config.runtime.namespace,
      config.docker.timeoutSeconds * 1000,
    )
    this.reader = new ImageStoreReader(this.client)
    this.journal = new RemovalJournal(config.stateDir)
  }

  health(): RuntimeHealth {
    return this.current
  }

  onHealthChange(listener: (h: RuntimeHealth) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
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
    const rootDir = await this.rootDir().catch(() => this.lastRootDir ?? undefined)
    this.setHealth({ reachable: true, version: version.version, rootDir })
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

  async removeImage(target: { id: string; refs: string[] }, hooks?: RemoveHooks): Promise<RemoveOutcome> {
    const view = await this.view()
    const image = view.images.find((i) => i.id === target.id)
    if (!image) return { outcome: 'skipped', reason: 'gone already' }
    // containerd itself would delete an image a container was made from: the guards are ours.
    const user = view.containers.find((c) => c.imageId === image.id)
    if (user) return { outcome: 'skipped', reason: `in use by container ${user.id.slice(0, 12)} (${user.state})` }
    if (image.pinned) return { outcome: 'skipped', reason: 'pinned' }
    const names = image.records.map((r) => r.name)
    const pulled = names.find((n) => this.isPulling(n))
    if (pulled) return { outcome: 'skipped', reason: `a pull in flight is writing ${pulled}` }
    this.journal.begin(image.id, names, image.records[0]!.target)
    try {
      for (const [i, name] of names.entries()) {
        const last = i === names.length - 1
        if (last) await hooks?.beforeLastReference?.()
        if (last) {
          // A container made while the names went keeps the image: the last name stays.
          const again = await this.call(() => this.listContainers())
          const now = again.find((c) => names.includes(c.image))
          if (now) return { outcome: 'skipped', reason: `in use by container ${now.id.slice(0, 12)} (created)` }
        }
        // sync on the last name: containerd's garbage collection has run when the call returns,
        // so the disk shows what was freed.
        await this.call(() => this.client.call('images', 'Delete', { name, sync: last })).catch((err) => {
          if (!isNotFound(err)) throw err
        })
      }
      this.journal.end(image.id)
      return { outcome: 'removed' }
    } catch (err) {
      if (err instanceof RuntimeUnavailableError) throw err
      return { outcome: 'failed', reason: (err as Error).message }
    }
  }

  async tagImage(source: string, target: string): Promise<void> {
    const view = await this.view()
    const image = findImage(view, source)
    if (!image) throw Object.assign(new Error(`no such image: ${source}`), { statusCode: 404 })
    const record = image.records[0]!
    const name = containerdName(target)
    // CRI names a pulled image by tag and by `repo@digest`: a name put on keeps the pair whole.
    const digestName = `${name.replace(/:[^:/]*$/, '')}@${record.target.digest}`
    for (const n of [name, digestName]) await this.putName(n, record)
  }

  async untagImage(ref: string): Promise<void> {
    const view = await this.view()
    const image = findImage(view, ref)
    const wanted = familiarRef(ref)
    const record = image?.records.find((r) => familiarRef(r.name) === wanted)
    if (!image || !record) throw Object.assign(new Error(`no such image: ${ref}`), { statusCode: 404 })
    const repo = (n: string) => n.replace(/[@:][^/]*$/, '')
    // The repository's digest names go with its last tag, as they came with it; never the last name.
    const others = image.records.filter((r) => r !== record && repo(r.name) === repo(record.name))
    const digestNames = others.every((r) => r.name.includes('@')) ? others : []
    const going = [record, ...digestNames]
    if (image.records.filter((r) => !r.name.startsWith('sha256:')).length <= going.length) {
      throw new Error(`${ref} is the image's only name: removing it is a removal`)
    }
    for (const r of going) await this.call(() => this.client.call('images', 'Delete', { name: r.name, sync: false }))
  }

  private async putName(name: string, record: ImageRecord): Promise<void> {
    const image = { name, labels: record.labels, target: record.target }
    await this.call(() => this.client.call('images', 'Create', { image })).catch((err) => {
      // Already there (on this or another image): point it here, as `docker tag` moves a name.
      if ((err as { code?: number }).code !== 6) throw err
      return this.call(() => this.client.call('images', 'Update', { image, updateMask: { paths: ['target'] } }))
    })
  }

  async pull(req: PullRequest): Promise<void> {
    const ref = req.reference.startsWith('sha256:') ? `${req.name}@${req.reference}` : `${req.name}:${req.reference}`
    const names = [containerdName(ref)]
    for (const n of names) this.pulling.set(n, (this.pulling.get(n) ?? 0) + 1)
    const progress = setInterval(() => void this.reportProgress(req).catch(() => undefined), 500)
    try {
      await this.client.call(
        'criImages',
        'PullImage',
        { image: { image: ref }, auth: criAuth(req.auth) },
        // a pull may take long: the stall timeout of the caller (its signal) bounds it instead
        { deadlineMs: 24 * 3600 * 1000, signal: req.signal },
      )
      await this.reportProgress(req)
    } catch (err) {
      if (req.signal.aborted) throw new PullError(String(req.signal.reason?.message ?? 'aborted'), false)
      if (err instanceof RuntimeUnavailableError) {
        this.markUnreachable(err)
        throw err
      }
      const message = (err as Error).message
      throw new PullError(message, /not found|404|manifest unknown/i.test(message))
    } finally {
      clearInterval(progress)
      for (const n of names) {
        const left = (this.pulling.get(n) ?? 1) - 1
        if (left > 0) this.pulling.set(n, left)
        else this.pulling.delete(n)
      }
    }
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
    this.lastRootDir = dirname(mountpoint)
    return this.lastRootDir
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
    const view = await this.view()
    const containers = await Promise.all(
      view.containers.map(async (c) => ({
        id: c.id,
        name: c.names[0] ?? c.id,
        state: c.state,
        sizeRwBytes: c.listed.snapshotKey
          ? ((await this.reader.snapshotUsage(c.listed.snapshotter, c.listed.snapshotKey, false)) ?? 0)
          : 0,
        // the kubelet keeps container logs under /var/log/pods, not in containerd's root
        logBytes: null,
        imageId: c.imageId,
        labels: c.listed.labels,
        finishedAt: c.exitedAtMs === null ? null : Math.floor(c.exitedAtMs / 1000),
      })),
    )
    return {
      imagesBytes: view.uniqueBytes,
      images: view.images.map((i) => ({
        id: i.id,
        sizeBytes: i.sizeBytes,
        sharedSizeBytes: i.sharedSizeBytes,
        containers: view.containers.filter((c) => c.imageId === i.id).length,
      })),
      containers,
      buildCacheBytes: 0,
      volumes: [],
    }
  }

  async removeContainer(id: string): Promise<RemoveOutcome> {
    const containers = await this.call(() => this.listContainers())
    const c = containers.find((x) => x.id === id)
    if (!c) return { outcome: 'skipped', reason: 'gone already' }
    try {
      // containerd refuses a container that still has a task (running or not): never forced.
      await this.call(() => this.client.call('containers', 'Delete', { id }))
    } catch (err) {
      if (err instanceof RuntimeUnavailableError) throw err
      if (isNotFound(err)) return { outcome: 'skipped', reason: 'gone already' }
      return { outcome: 'skipped', reason: (err as Error).message }
    }
    if (c.snapshotKey) {
      await this.call(() =>
        this.client.call('snapshots', 'Remove', { snapshotter: c.snapshotter, key: c.snapshotKey }),
      ).catch((err) => {
        if (!isNotFound(err)) throw err
      })
    }
    return { outcome: 'removed' }
  }

  async pinWanted(refs: string[]): Promise<{ pinned: string[]; unpinned: string[] }> {
    const view = await this.view()
    const wanted = new Set(refs.map((r) => familiarRef(r)))
    const out = { pinned: [] as string[], unpinned: [] as string[] }
    for (const image of view.images) {
      const isWanted = image.records.some((r) => wanted.has(familiarRef(r.name)))
      const ours = image.records.filter((r) => r.labels[PINNED_BY_LABEL])
      if (isWanted) {
        const unpinned = image.records.filter((r) => r.labels[PINNED_LABEL] !== 'pinned')
        for (const r of unpinned)
          await this.setLabels(r.name, { [PINNED_LABEL]: 'pinned', [PINNED_BY_LABEL]: 'wanted' })
        if (unpinned.length > 0) out.pinned.push(image.id)
      } else if (ours.length > 0) {
        for (const r of ours) await this.setLabels(r.name, { [PINNED_LABEL]: '', [PINNED_BY_LABEL]: '' })
        out.unpinned.push(image.id)
      }
    }
    return out
  }

  /** sets (or, with an empty value, removes) labels on one image record, leaving its others */
  private async setLabels(name: string, labels: Record<string, string>): Promise<void> {
    await this.call(() =>
      this.client.call('images', 'Update', {
        image: { name, labels: Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== '')) },
        updateMask: { paths: Object.keys(labels).map((k) => `labels.${k}`) },
      }),
    ).catch((err) => {
      if (!isNotFound(err)) throw err // the name went meanwhile: nothing to pin
    })
  }

  async pruneBuildCache(): Promise<{ reclaimedBytes: number }> {
    return { reclaimedBytes: 0 }
  }

  hasInterruptedRemovals(): boolean {
    return Object.keys(this.journal.pending()).length > 0
  }

  async recoverInterruptedRemovals(): Promise<string[]> {
    const pending = this.journal.pending()
    const restored: string[] = []
    for (const [id, entry] of Object.entries(pending)) {
      if (entry.target) {
        for (const name of entry.tags) {
          const created = await this.call(() =>
            this.client.call('images', 'Create', { image: { name, target: entry.target } }),
          ).then(
            () => true,
            (err) => {
              if (err instanceof RuntimeUnavailableError) throw err
              return false // already there, or its content is gone: nothing to put back
            },
          )
          if (created) restored.push(name)
        }
      }
      this.journal.end(id)
    }
    return restored
  }

  private isPulling(name: string): boolean {
    return this.pulling.has(name) || this.pulling.has(containerdName(name))
  }

  private async reportProgress(req: PullRequest): Promise<void> {
    const statuses = await this.client.call<{ statuses?: WireContentStatus[] }>('content', 'ListStatuses', {
      filters: [],
    })
    const writing = new Map<string, number>()
    for (const s of statuses.statuses ?? []) writing.set(s.expected || s.ref, s.offset)
    let done = 0
    for (const layer of req.layers) {
      const partial = writing.get(layer.digest) ?? [...writing].find(([k]) => k.includes(layer.digest))?.[1]
      if (partial !== undefined) done += partial
      else if (await this.hasBlob(layer.digest)) done += layer.sizeBytes
    }
    req.onProgress({ bytesDone: Math.min(done, req.totalBytes), bytesTotal: req.totalBytes })
  }

  private async hasBlob(digest: string): Promise<boolean> {
    return this.client.call('content', 'Info', { digest }).then(
      () => true,
      () => false,
    )
  }

  private async listContainers(): Promise<ListedContainer[]> {
    const res = await this.client.call<{ containers?: WireContainer[] }>('containers', 'List', { filters: [] })
    return (res.containers ?? []).map((c): ListedContainer => ({
      id: c.id,
      image: c.image,
      labels: c.labels ?? {},
      snapshotter: c.snapshotter,
      snapshotKey: c.snapshotKey,
      createdAtMs: timestampMs(c.createdAt),
    }))
  }

  /** images, containers and tasks read together, with every image's shared bytes accounted */
  private async view(): Promise<StoreView> {
    return this.call(async () => {
      const [records, listed, tasks, pinnedByCri] = await Promise.all([
        this.reader.list(),
        this.listContainers(),
        this.client.call<{ tasks?: WireTask[] }>('tasks', 'List', { filter: '' }),
        this.criPinned(),
      ])
      const byId = new Map<string, { records: ImageRecord[]; resolved: ResolvedImage }>()
      for (const record of records) {
        const resolved = await this.reader.resolve(record)
        if (!resolved) continue // incomplete: a pull in progress
        const entry = byId.get(resolved.id) ?? { records: [], resolved }
        entry.records.push(record)
        byId.set(resolved.id, entry)
      }
      const idByName = new Map<string, string>()
      const idByTop = new Map<string, string>()
      for (const [id, { records: rs, resolved }] of byId) {
        for (const r of rs) idByName.set(r.name, id)
        if (resolved.top) idByTop.set(resolved.top.chainId, id)
      }
      const taskOf = new Map((tasks.tasks ?? []).map((t) => [t.containerId, t]))
      const chains: Set<string>[] = []
      const containers: StoreView['containers'] = []
      for (const c of listed) {
        this.containerImages.set(c.id, c.image)
        let imageId = idByName.get(c.image) ?? ''
        if (c.snapshotKey) {
          const chain = await this.reader.snapshotChain(c.snapshotter, c.snapshotKey)
          // An image whose name went while a container holds its layers is still that container's image.
          if (!imageId && chain[0]) imageId = idByTop.get(chain[0]) ?? ''
          chains.push(new Set(chain.map((k) => `s:${k}`)))
        }
        const task = taskOf.get(c.id)
        containers.push({
          id: c.id,
          names: [c.labels['io.kubernetes.container.name'] ?? c.id],
          imageId,
          // created without a task: made and never started (or its task was deleted)
          state: task ? (TASK_STATES[task.status] ?? 'created') : 'created',
          createdAt: Math.floor((c.createdAtMs ?? 0) / 1000),
          listed: c,
          exitedAtMs: task && task.status === 3 ? timestampMs(task.exitedAt) : null,
        })
      }
      for (const id of [...this.containerImages.keys()]) {
        if (!listed.some((c) => c.id === id)) this.containerImages.delete(id)
      }
      const holdings = [...byId].map(([id, e]) => ({ id, items: e.resolved.items }))
      // Containers of one of these images hold nothing more than it does; others' chains count.
      const { perImage, uniqueBytes } = accountImages(
        holdings,
        chains.filter((_, i) => !containers[i]?.imageId),
      )
      const images: StoreView['images'] = [...byId].map(([id, { records: rs, resolved }]) => {
        const names = rs.map((r) => r.name).filter((n) => !n.startsWith('sha256:'))
        const created = resolved.createdAt ?? Math.floor(Math.min(...rs.map((r) => r.createdAtMs ?? 0)) / 1000)
        return {
          id,
          repoTags: names.filter((n) => !n.includes('@')).map(familiarRef),
          repoDigests: names.filter((n) => n.includes('@')).map(familiarRef),
          sizeBytes: perImage.get(id)!.sizeBytes,
          sharedSizeBytes: perImage.get(id)!.sharedSizeBytes,
          createdAt: created,
          pinned: pinnedByCri.has(id) || rs.some((r) => r.labels[PINNED_LABEL] === 'pinned'),
          records: rs,
          resolved,
        }
      })
      return { images, containers, uniqueBytes }
    })
  }

  /** the images CRI itself calls pinned (the sandbox image; labelled ones on containerd ≥ 1.7) */
  private async criPinned(): Promise<Set<string>> {
    // CRI serves only its own namespace.
    if (this.client.namespace !== 'k8s.io') return new Set()
    try {
      const res = await this.client.call<{ images?: WireCriImage[] }>('criImages', 'ListImages', {})
      return new Set((res.images ?? []).filter((i) => i.pinned).map((i) => i.id))
    } catch (err) {
      if (err instanceof RuntimeUnavailableError) throw err
      return new Set() // no CRI plugin here: labels alone say what is pinned
    }
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      const out = await fn()
      if (!this.current.reachable) this.setHealth({ ...this.current, reachable: true, reason: undefined })
      return out
    } catch (err) {
      if (err instanceof RuntimeUnavailableError) this.markUnreachable(err)
      throw err
    }
  }

  private markUnreachable(err: Error): void {
    this.setHealth({ reachable: false, reason: err.message, rootDir: this.lastRootDir ?? undefined })
  }

  private setHealth(h: RuntimeHealth): void {
    const c = this.current
    const changed =
      h.reachable !== c.reachable || h.reason !== c.reason || h.version !== c.version || h.rootDir !== c.rootDir
    this.current = h
    if (changed) for (const listener of this.listeners) listener(h)
  }
}

/** containerd stores fully qualified names (`docker.io/library/ubuntu:latest`), as CRI does */
export function containerdName(ref: string): string {
  if (ref.startsWith('sha256:')) return ref
  const q = qualifiedRef(ref)
  return /[:@][^/]*$/.test(q.slice(q.lastIndexOf('/'))) ? q : `${q}:latest`
}

function findImage(view: StoreView, ref: string): StoreView['images'][number] | undefined {
  const wanted = familiarRef(ref)
  return view.images.find(
    (i) => i.id === ref || i.id === wanted || i.records.some((r) => familiarRef(r.name) === wanted),
  )
}

function criAuth(auth: Record<string, string> | undefined): object | undefined {
  if (!auth) return undefined
  return {
    username: auth.username ?? '',
    password: auth.password ?? '',
    auth: auth.auth ?? '',
    serverAddress: auth.serveraddress ?? auth.serverAddress ?? '',
    identityToken: auth.identitytoken ?? auth.identityToken ?? '',
    registryToken: auth.registrytoken ?? auth.registryToken ?? '',
  }
}

// One read of containerd's image store, containers and tasks together, with every image's shared
// bytes accounted: what listing, inspection, removal and disk accounting all start from. Images are
// grouped by id (a config digest may carry several names); a container's image is the one its name
// points at, else the one whose top layer its snapshot chain starts from.
import { familiarRef } from '../registry/reference.js'
import { accountImages } from './containerd-accounting.js'
import { timestampMs, type ContainerdClient } from './containerd-client.js'
import { PINNED_LABEL, type ImageRecord, type ImageStoreReader, type ResolvedImage } from './containerd-images.js'
import type { WireContainer, WireCriImage, WireTask } from './containerd-wire.js'
import { RuntimeUnavailableError, type RuntimeContainer, type RuntimeImage } from './runtime.js'

/** containerd.v1.types.Status */
const TASK_STATES: Record<number, string> = { 1: 'created', 2: 'running', 3: 'exited', 4: 'paused', 5: 'paused' }

export interface ListedContainer {
  id: string
  image: string
  labels: Record<string, string>
  snapshotter: string
  snapshotKey: string
  createdAtMs: number | null
}

/** one read of the image store, containers and tasks, with the accounting done */
export interface StoreView {
  images: (RuntimeImage & { records: ImageRecord[]; resolved: ResolvedImage; pinned: boolean })[]
  containers: (RuntimeContainer & { listed: ListedContainer; exitedAtMs: number | null })[]
  uniqueBytes: number
}

/** what the runtime's parts share: the client, calls that keep the runtime's health, a fresh view */
export interface ContainerdAccess {
  readonly client: ContainerdClient
  /** a function, not a method: the parts take it apart from the object */
  readonly call: <T>(fn: () => Promise<T>) => Promise<T>
  readonly view: () => Promise<StoreView>
}

export async function listContainers(client: ContainerdClient): Promise<ListedContainer[]> {
  const res = await client.call<{ containers?: WireContainer[] }>('containers', 'List', { filters: [] })
  return (res.containers ?? []).map((c): ListedContainer => ({
    id: c.id,
    image: c.image,
    labels: c.labels ?? {},
    snapshotter: c.snapshotter,
    snapshotKey: c.snapshotKey,
    createdAtMs: timestampMs(c.createdAt),
  }))
}

/**
 * images, containers and tasks read together, with every image's shared bytes accounted;
 * `containerImages` (container id → image name) is brought up to date on the way
 */
export async function readStoreView(
  client: ContainerdClient,
  reader: ImageStoreReader,
  containerImages: Map<string, string>,
): Promise<StoreView> {
  const [records, listed, tasks, pinnedByCri] = await Promise.all([
    reader.list(),
    listContainers(client),
    client.call<{ tasks?: WireTask[] }>('tasks', 'List', { filter: '' }),
    criPinned(client),
  ])
  const byId = new Map<string, { records: ImageRecord[]; resolved: ResolvedImage }>()
  for (const record of records) {
    const resolved = await reader.resolve(record)
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
    containerImages.set(c.id, c.image)
    let imageId = idByName.get(c.image) ?? ''
    if (c.snapshotKey) {
      const chain = await reader.snapshotChain(c.snapshotter, c.snapshotKey)
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
  for (const id of [...containerImages.keys()]) {
    if (!listed.some((c) => c.id === id)) containerImages.delete(id)
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
}

/** the images CRI itself calls pinned (the sandbox image; labelled ones on containerd ≥ 1.7) */
async function criPinned(client: ContainerdClient): Promise<Set<string>> {
  // CRI serves only its own namespace.
  if (client.namespace !== 'k8s.io') return new Set()
  try {
    const res = await client.call<{ images?: WireCriImage[] }>('criImages', 'ListImages', {})
    return new Set((res.images ?? []).filter((i) => i.pinned).map((i) => i.id))
  } catch (err) {
    if (err instanceof RuntimeUnavailableError) throw err
    return new Set() // no CRI plugin here: labels alone say what is pinned
  }
}

/** an image of the view by id or by any of its names */
export function findImage(view: StoreView, ref: string): StoreView['images'][number] | undefined {
  const wanted = familiarRef(ref)
  return view.images.find(
    (i) => i.id === ref || i.id === wanted || i.records.some((r) => familiarRef(r.name) === wanted),
  )
}

// Reading containerd's image store: each image record (a name and the descriptor it points at)
// resolved through the content store to its config (the image id, its env and diff ids) and to
// what it holds on disk (blobs and unpacked snapshots). Blobs and committed snapshots never change
// under a digest, so what was read once is kept for the process's life.
import { createHash } from 'node:crypto'
import { arch } from 'node:process'
import { qualifiedRef } from '../registry/reference.js'
import { isNotFound, timestampMs, type ContainerdClient } from './containerd-client.js'
import { chainIds } from './containerd-accounting.js'
import type { OciConfig, OciIndex, OciManifest, WireContentInfo, WireImage } from './containerd-wire.js'

/** the label CRI (containerd ≥ 1.7) reads as `pinned`: the kubelet's image GC never takes such an image */
export const PINNED_LABEL = 'io.cri-containerd.pinned'
/** marks a pin gpuhost set (for a wanted image), so it only ever takes off its own */
export const PINNED_BY_LABEL = 'io.gpuhost.pinned-for'

export interface ImageRecord {
  name: string
  labels: Record<string, string>
  target: { mediaType: string; digest: string; size: number }
  createdAtMs: number | null
  updatedAtMs: number | null
}

export interface ResolvedImage {
  /** the config digest: what CRI and Docker call the image id */
  id: string
  env: string[]
  /** unix seconds the image was built; null when its config does not say */
  createdAt: number | null
  /** blobs (`c:digest`) and unpacked snapshots (`s:chainid`) with their bytes */
  items: Map<string, number>
  /** the snapshotter and chain id of the top layer, when the image is unpacked */
  top: { snapshotter: string; chainId: string } | null
}

const INDEX_TYPES = /manifest\.list|image\.index/
const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x' }

export class ImageStoreReader {
  private readonly blobs = new Map<string, { size: number; labels: Record<string, string> } | null>()
  private readonly json = new Map<string, unknown>()
  private readonly snapshotBytes = new Map<string, number>()

  constructor(private readonly client: ContainerdClient) {}

  async list(): Promise<ImageRecord[]> {
    const res = await this.client.call<{ images?: WireImage[] }>('images', 'List', { filters: [] })
    return (res.images ?? []).map((i): ImageRecord => ({
      name: i.name,
      labels: i.labels ?? {},
      target: { mediaType: i.target?.mediaType ?? '', digest: i.target?.digest ?? '', size: i.target?.size ?? 0 },
      createdAtMs: timestampMs(i.createdAt),
      updatedAtMs: timestampMs(i.updatedAt),
    }))
  }

  /** null when the image's content is incomplete here (a pull in progress, content removed) */
  async resolve(record: ImageRecord): Promise<ResolvedImage | null> {
    const items = new Map<string, number>()
    let manifestDigest = record.target.digest
    if (INDEX_TYPES.test(record.target.mediaType)) {
      const index = await this.readJson<OciIndex>(record.target.digest)
      if (!index) return null
      items.set(`c:${record.target.digest}`, (await this.info(record.target.digest))?.size ?? 0)
      const chosen = await this.pickManifest(index.manifests ?? [])
      if (!chosen) return null
      manifestDigest = chosen
    }
    const manifest = await this.readJson<OciManifest>(manifestDigest)
    if (!manifest?.config?.digest) return null
    const configDigest: string = manifest.config.digest
    const config = await this.readJson<OciConfig>(configDigest)
    if (!config) return null
    for (const d of [manifestDigest, configDigest, ...(manifest.layers ?? []).map((l) => l.digest)]) {
      const info = await this.info(d)
      // A layer blob discarded after unpacking holds no bytes here; its snapshot does.
      if (info) items.set(`c:${d}`, info.size)
    }
    const top = await this.topSnapshot(configDigest, config)
    if (top) {
      for (const chainId of chainIds(config.rootfs?.diff_ids ?? [], sha256)) {
        const size = await this.snapshotUsage(top.snapshotter, chainId)
        if (size !== null) items.set(`s:${chainId}`, size)
      }
    }
    const created = typeof config.created === 'string' ? Date.parse(config.created) : NaN
    return {
      id: configDigest,
      env: config.config?.Env ?? [],
      createdAt: Number.isFinite(created) ? Math.floor(created / 1000) : null,
      items,
      top,
    }
  }

  /** bytes of a snapshot; committed ones are cached, active ones (containers') read each time */
  async snapshotUsage(snapshotter: string, key: string, cache = true): Promise<number | null> {
    const cached = this.snapshotBytes.get(`${snapshotter}/${key}`)
    if (cache && cached !== undefined) return cached
    try {
      const res = await this.client.call<{ size: number }>('snapshots', 'Usage', { snapshotter, key })
      if (cache) this.snapshotBytes.set(`${snapshotter}/${key}`, res.size)
      return res.size
    } catch (err) {
      if (isNotFound(err)) return null
      throw err
    }
  }

  /** the chain of committed snapshots under `key` (a container's writable snapshot), parents first out */
  async snapshotChain(snapshotter: string, key: string): Promise<string[]> {
    const chain: string[] = []
    let next = key
    for (let i = 0; i < 256 && next; i++) {
      try {
        const res = await this.client.call<{ info?: { parent?: string } }>('snapshots', 'Stat', {
          snapshotter,
          key: next,
        })
        if (next !== key) chain.push(next)
        next = res.info?.parent ?? ''
      } catch (err) {
        if (isNotFound(err)) break
        throw err
      }
    }
    return chain
  }

  private async topSnapshot(configDigest: string, config: OciConfig): Promise<ResolvedImage['top']> {
    // The unpacker labels the config blob with the snapshot it made, per snapshotter.
    const labels = (await this.info(configDigest))?.labels ?? {}
    const key = Object.keys(labels).find((k) => k.startsWith('containerd.io/gc.ref.snapshot.'))
    if (!key) return null
    const ids = chainIds(config.rootfs?.diff_ids ?? [], sha256)
    return {
      snapshotter: key.slice('containerd.io/gc.ref.snapshot.'.length),
      chainId: ids[ids.length - 1] ?? labels[key],
    }
  }

  private async pickManifest(manifests: NonNullable<OciIndex['manifests']>): Promise<string | null> {
    const wanted = GOARCH[arch] ?? arch
    const ordered = [
      ...manifests.filter((m) => m.platform?.os === 'linux' && m.platform?.architecture === wanted),
      ...manifests,
    ]
    for (const m of ordered) if (await this.info(m.digest)) return m.digest
    return null
  }

  private async info(digest: string): Promise<{ size: number; labels: Record<string, string> } | null> {
    if (this.blobs.has(digest)) return this.blobs.get(digest)!
    try {
      const res = await this.client.call<{ info: WireContentInfo }>('content', 'Info', { digest })
      const info = { size: res.info.size, labels: res.info.labels ?? {} }
      // Labels change (unpacking adds the snapshot label): only a labelled config is final.
      if (Object.keys(info.labels).some((k) => k.startsWith('containerd.io/gc.ref.snapshot.'))) {
        this.blobs.set(digest, info)
      }
      return info
    } catch (err) {
      if (isNotFound(err)) return null
      throw err
    }
  }

  private async readJson<T>(digest: string): Promise<T | null> {
    if (this.json.has(digest)) return this.json.get(digest) as T
    try {
      const parts = await this.client.collect<{ data: Buffer }>('content', 'Read', { digest, offset: 0, size: 0 })
      const value = JSON.parse(Buffer.concat(parts.map((p) => p.data)).toString('utf8')) as T
      this.json.set(digest, value)
      return value
    } catch (err) {
      if (isNotFound(err)) return null
      throw err
    }
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex')
}

/** containerd stores fully qualified names (`docker.io/library/ubuntu:latest`), as CRI does */
export function containerdName(ref: string): string {
  if (ref.startsWith('sha256:')) return ref
  const q = qualifiedRef(ref)
  return /[:@][^/]*$/.test(q.slice(q.lastIndexOf('/'))) ? q : `${q}:latest`
}

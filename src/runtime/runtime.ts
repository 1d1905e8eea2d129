// The container runtime as every feature sees it: images with the containers that use them,
// inspection, removal, pulls, the event stream, the data root and disk usage. Nothing here names
// an engine: Docker (docker.ts) is the first implementation; another runtime (containerd over
// CRI) implements the same contract without any feature changing. docs/runtime.md says what
// each method must guarantee.
import type { Readable } from 'node:stream'
import { UnavailableError } from '../errors.js'
import type { RegistryTrust } from '../registry/insecure.js'

/** one local image; references as the runtime names them (familiar names, `repo:tag`, `repo@digest`) */
export interface RuntimeImage {
  id: string
  repoTags: string[]
  repoDigests: string[]
  sizeBytes: number
  /** bytes of layers shared with other images; -1 when the runtime did not say */
  sharedSizeBytes: number
  /** unix seconds */
  createdAt: number
  /** the image config's labels (LABEL in a Dockerfile, compose's build labels) */
  labels?: Record<string, string>
  /** the runtime keeps it whatever happens (CRI `pinned`: the kubelet's GC never takes it); absent: not */
  pinned?: boolean
}

/** one container, running or not; `imageId` is the image it was made from */
export interface RuntimeContainer {
  id: string
  names: string[]
  imageId: string
  /** created | running | paused | restarting | exited | dead */
  state: string
  /** unix seconds */
  createdAt: number
}

/** what inspecting one image tells */
export interface ImageDetails {
  id: string
  repoTags: string[]
  repoDigests: string[]
  /** the image config's environment, `KEY=value` */
  env: string[]
  /** when a name was last put on the image; null when the runtime does not record it */
  lastTagTime: string | null
}

/** an image or container change; `image` is the reference a container event named */
export interface RuntimeEvent {
  type: 'container' | 'image'
  action: string
  id?: string
  image?: string
  /** when it happened, unix milliseconds; absent when the runtime did not say */
  atMs?: number
}

export type RemoveOutcome =
  { outcome: 'removed' } | { outcome: 'skipped'; reason: string } | { outcome: 'failed'; reason: string }

export interface RemoveHooks {
  /** runs after the extra references are gone and before the image itself goes (tests race it here) */
  beforeLastReference?: () => Promise<void> | void
}

export interface PullProgress {
  bytesDone: number
  bytesTotal: number
}

export interface PullRequest {
  /** repository, familiar form (`nvcr.io/nvidia/cuda`, `ubuntu`) */
  name: string
  /** tag or digest */
  reference: string
  /** registry credentials, as the registry client stores them */
  auth?: Record<string, string>
  signal: AbortSignal
  /** the manifest's layers and compressed total, so progress counts bytes against them */
  layers: { digest: string; sizeBytes: number }[]
  totalBytes: number
  onProgress(p: PullProgress): void
}

/** what the runtime's own disk accounting says (Docker: /system/df), in bytes */
export interface RuntimeDiskUsage {
  /** every layer once: what `docker system df` prints as the images' size */
  imagesBytes: number
  images: { id: string; sizeBytes: number; sharedSizeBytes: number; containers: number }[]
  containers: {
    id: string
    name: string
    state: string
    /** the writable layer */
    sizeRwBytes: number
    /** the container's own log file; null when its log driver keeps none here or it is gone */
    logBytes: number | null
    imageId: string
    labels: Record<string, string>
    /** when it last finished, unix seconds; null when it never ran or is running */
    finishedAt: number | null
  }[]
  /** build cache records not shared with images */
  buildCacheBytes: number
  /** `anonymous`: made by Docker for a container (`-v /path`), not named by anyone */
  volumes: { name: string; sizeBytes: number; refCount: number; labels: Record<string, string>; anonymous: boolean }[]
}

/** whether the runtime answers, and what it last said about itself */
export interface RuntimeHealth {
  reachable: boolean
  reason?: string
  rootDir?: string
  version?: string
}

export interface RuntimeEventHandlers {
  onEvent(event: RuntimeEvent): void
}

/** the event stream is open; `ended` resolves with why it closed */
export interface OpenEvents {
  ended: Promise<string>
}

export interface ContainerRuntime {
  /** `docker`, `containerd`: for logs and status */
  readonly kind: string
  /** a cheap liveness check with its own short timeout; throws RuntimeUnavailableError */
  ping(): Promise<void>
  /** the last known health; changes are announced to onHealthChange listeners */
  health(): RuntimeHealth
  onHealthChange(listener: (h: RuntimeHealth) => void): () => void
  /** every image and every container (running or not), read together */
  listImagesWithContainers(): Promise<{ images: RuntimeImage[]; containers: RuntimeContainer[] }>
  /** when an exited container finished; null when it never ran or is gone */
  containerFinishedAt(id: string): Promise<string | null>
  /** by id or reference; null when there is no such image */
  inspectImage(ref: string): Promise<ImageDetails | null>
  /** never forced: an image a container uses stays; see RemoveOutcome */
  removeImage(image: { id: string; refs: string[] }, hooks?: RemoveHooks): Promise<RemoveOutcome>
  /** puts `target` (`repo:tag`) on the image `source` names */
  tagImage(source: string, target: string): Promise<void>
  /** takes the name `ref` off its image; the image itself stays while other names hold it */
  untagImage(ref: string): Promise<void>
  /** pulls until done or `signal` aborts; throws PullError */
  pull(req: PullRequest): Promise<void>
  /** opens the image and container event stream from `since` (unix seconds) on */
  openEvents(opts: { since?: number; signal: AbortSignal }, handlers: RuntimeEventHandlers): Promise<OpenEvents>
  /** where the runtime keeps its data (the filesystem prune frees) */
  rootDir(): Promise<string>
  /** which registries the runtime itself treats as insecure */
  registryTrust(): Promise<RegistryTrust>
  /** the OCI runtimes it can start containers with (Docker: `nvidia` when the toolkit registered it) */
  ociRuntimes?(): Promise<{ names: string[]; defaultRuntime: string | null }>
  /**
   * pins the images `refs` name where the runtime can (containerd: the CRI pinned label, which the
   * kubelet's GC honours) and unpins those it pinned before that are no longer named; returns the
   * image ids whose pin changed. Pins it did not set (the kubelet's sandbox image) stay.
   */
  pinWanted?(refs: string[]): Promise<{ pinned: string[]; unpinned: string[] }>
  /** bytes shared with other images, by image id, from the runtime's own disk accounting */
  sharedSizes(): Promise<Map<string, number>>
  /**
   * images, writable layers, logs, build cache and volumes; walks every layer, so it is slow on a
   * big host: called on its own slow interval or on demand, never on a scrape
   */
  diskUsage(): Promise<RuntimeDiskUsage>
  /** removes a stopped container and its writable layer; never forced: a running one is `skipped` */
  removeContainer(id: string): Promise<RemoveOutcome>
  /**
   * removes one volume no container refers to; never forced: one in use is `skipped`. Absent where
   * the runtime has no volumes (containerd).
   */
  removeVolume?(name: string): Promise<RemoveOutcome>
  /**
   * the image `id` (sha256:…) as a `docker save` archive, without names; null when there is no such
   * image. Absent where the runtime cannot export (containerd here): such a host does not serve peers.
   */
  saveImage?(id: string): Promise<Readable | null>
  /**
   * loads a `docker save` archive: the image ids loaded and the names the archive put on them.
   * Throws when the archive fails, is cut or damaged, or `signal` aborts: then nothing is loaded.
   */
  loadImage?(archive: Readable, signal?: AbortSignal): Promise<LoadResult>
  /** removes unused build cache; the bytes it gave back */
  pruneBuildCache(): Promise<{ reclaimedBytes: number }>
  /** whether a removal interrupted by a crash left names to put back (the journal says; no call) */
  hasInterruptedRemovals(): boolean
  /** puts back the names a removal interrupted by a crash took off; returns what was restored */
  recoverInterruptedRemovals(): Promise<string[]>
}

/** the runtime itself is away (refused, reset, timed out): no point asking it about the next image */
export class RuntimeUnavailableError extends UnavailableError {
  constructor(message: string, cause?: unknown) {
    super(message)
    this.name = 'RuntimeUnavailableError'
    this.cause = cause
  }
}

/** a pull that failed; `notFound` when no registry had the image */
export class PullError extends Error {
  constructor(
    message: string,
    readonly notFound: boolean,
  ) {
    super(message)
    this.name = 'PullError'
  }
}

/** what the engine said it did while loading: every id and name it touched */
export interface LoadResult {
  /** ids loaded (`Loaded image ID: …`) */
  ids: string[]
  /** names it applied (`Loaded image: …`) */
  names: string[]
  /** names it took from another image (`The image X already exists, renaming the old one …`) */
  renamed: string[]
}

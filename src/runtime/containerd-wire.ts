// The decoded shapes of the gRPC messages and OCI documents the containerd runtime reads, as
// @grpc/proto-loader gives them (camelCase fields, longs as numbers, defaults filled in) from the
// .proto files under proto/. Only the fields that are read are named.

export interface Timestamp {
  seconds?: number
  nanos?: number
}

export interface WireDescriptor {
  mediaType: string
  digest: string
  size: number
}

export interface WireImage {
  name: string
  labels: Record<string, string>
  target?: WireDescriptor | null
  createdAt?: Timestamp | null
  updatedAt?: Timestamp | null
}

export interface WireContainer {
  id: string
  labels: Record<string, string>
  image: string
  snapshotter: string
  snapshotKey: string
  createdAt?: Timestamp | null
}

/** containerd.v1.types.Process; status: 1 created, 2 running, 3 stopped, 4 paused, 5 pausing */
export interface WireTask {
  containerId: string
  status: number
  exitedAt?: Timestamp | null
}

export interface WireContentInfo {
  digest: string
  size: number
  labels: Record<string, string>
}

export interface WireContentStatus {
  ref: string
  offset: number
  total: number
  expected: string
}

export interface WireCriImage {
  id: string
  pinned: boolean
}

export interface WireAny {
  typeUrl?: string
  value?: Buffer
}

export interface WireEnvelope {
  timestamp?: Timestamp | null
  namespace?: string
  topic?: string
  event?: WireAny | null
}

/** the fields of containerd's event payloads (container, task and image events) that are read */
export interface EventPayload {
  id?: string
  image?: string
  containerId?: string
  name?: string
}

export interface OciIndex {
  manifests?: { digest: string; platform?: { os?: string; architecture?: string } }[]
}

export interface OciManifest {
  config?: { digest: string }
  layers?: { digest: string }[]
}

export interface OciConfig {
  created?: string
  config?: { Env?: string[] | null } | null
  rootfs?: { diff_ids?: string[] }
}

// The gRPC clients of one containerd socket: the CRI ImageService (what the kubelet itself calls,
// for pulls with the CRI's registry config and the CRI's view of pinned images) and containerd's
// own services for what CRI does not say (every container, image labels, content and snapshot
// sizes, tasks, events). The .proto files under proto/ hold only the messages used here.
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import protobuf from 'protobufjs'
import { RuntimeUnavailableError } from './runtime.js'
import type { EventPayload, Timestamp, WireAny } from './containerd-wire.js'

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url))
const FILES = [
  'cri.proto',
  'containerd/version.proto',
  'containerd/containers.proto',
  'containerd/images.proto',
  'containerd/content.proto',
  'containerd/snapshots.proto',
  'containerd/tasks.proto',
  'containerd/events.proto',
  'containerd/event-payloads.proto',
  'containerd/image-events.proto',
]
// Longs as numbers: sizes are below 2^53; timestamps stay {seconds, nanos}.
const LOAD_OPTIONS = { keepCase: false, longs: Number, enums: Number, defaults: true, includeDirs: [PROTO_DIR] }

type AnyClient = grpc.Client & Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>

let loaded: { def: grpc.GrpcObject; payloads: protobuf.Root } | null = null
function load(): { def: grpc.GrpcObject; payloads: protobuf.Root } {
  if (!loaded) {
    const pkg = protoLoader.loadSync(FILES, LOAD_OPTIONS)
    const payloads = new protobuf.Root()
    payloads.resolvePath = (_origin, target) => (target.startsWith('google/') ? target : PROTO_DIR + target)
    payloads.loadSync(['containerd/event-payloads.proto', 'containerd/image-events.proto'], { keepCase: false })
    loaded = { def: grpc.loadPackageDefinition(pkg), payloads }
  }
  return loaded
}

function serviceCtor(path: string): grpc.ServiceClientConstructor {
  let node: grpc.GrpcObject | grpc.ServiceClientConstructor = load().def
  for (const part of path.split('.')) node = (node as grpc.GrpcObject)[part] as grpc.GrpcObject
  return node as unknown as grpc.ServiceClientConstructor
}

const SERVICES = {
  version: 'containerd.services.version.v1.Version',
  containers: 'containerd.services.containers.v1.Containers',
  images: 'containerd.services.images.v1.Images',
  content: 'containerd.services.content.v1.Content',
  snapshots: 'containerd.services.snapshots.v1.Snapshots',
  tasks: 'containerd.services.tasks.v1.Tasks',
  events: 'containerd.services.events.v1.Events',
  criImages: 'runtime.v1.ImageService',
} as const
export type ServiceName = keyof typeof SERVICES

export class ContainerdClient {
  private readonly clients = new Map<ServiceName, AnyClient>()
  private readonly metadata: grpc.Metadata

  constructor(
    readonly socket: string,
    readonly namespace: string,
    private readonly defaultDeadlineMs: number,
  ) {
    this.metadata = new grpc.Metadata()
    // containerd scopes every call to the namespace this header names; CRI keeps to its own (k8s.io).
    this.metadata.set('containerd-namespace', namespace)
  }

  private client(service: ServiceName): AnyClient {
    let c = this.clients.get(service)
    if (!c) {
      const Ctor = serviceCtor(SERVICES[service])
      c = new Ctor(`unix://${this.socket}`, grpc.credentials.createInsecure(), {
        // images' content can be large, but no answer read here comes near this
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
      }) as unknown as AnyClient
      this.clients.set(service, c)
    }
    return c
  }

  /** calls `service.method`; connection failures become RuntimeUnavailableError */
  call<T>(
    service: ServiceName,
    method: string,
    request: object,
    opts: { deadlineMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    const c = this.client(service)
    const deadline = new Date(Date.now() + (opts.deadlineMs ?? this.defaultDeadlineMs))
    return new Promise<T>((resolve, reject) => {
      const call = c[method]!.call(c, request, this.metadata, { deadline }, (err: grpc.ServiceError | null, res: T) =>
        err ? reject(asRuntimeError(err, this.socket)) : resolve(res),
      )
      opts.signal?.addEventListener('abort', () => call.cancel(), { once: true })
    })
  }

  /** a server stream: every message, collected (content reads are small: manifests and configs) */
  collect<T>(service: ServiceName, method: string, request: object, deadlineMs?: number): Promise<T[]> {
    const c = this.client(service)
    const deadline = new Date(Date.now() + (deadlineMs ?? this.defaultDeadlineMs))
    return new Promise<T[]>((resolve, reject) => {
      const out: T[] = []
      const stream = c[method]!.call(c, request, this.metadata, { deadline }) as unknown as grpc.ClientReadableStream<T>
      stream.on('data', (m: T) => out.push(m))
      stream.on('error', (err: grpc.ServiceError) => reject(asRuntimeError(err, this.socket)))
      stream.on('end', () => resolve(out))
    })
  }

  /** an open server stream with no deadline (the event subscription) */
  stream<T>(service: ServiceName, method: string, request: object): grpc.ClientReadableStream<T> {
    const c = this.client(service)
    return c[method]!.call(c, request, this.metadata) as unknown as grpc.ClientReadableStream<T>
  }

  /** decodes an event's payload by its type URL; null for a type not described in proto/ */
  decodeAny(any: WireAny): EventPayload | null {
    const name = (any.typeUrl ?? '').replace(/^.*\//, '')
    let type: protobuf.Type
    try {
      type = load().payloads.lookupType(name)
    } catch {
      return null
    }
    return type.toObject(type.decode(any.value ?? Buffer.alloc(0)), { longs: Number, defaults: true }) as EventPayload
  }

  close(): void {
    for (const c of this.clients.values()) c.close()
    this.clients.clear()
  }
}

/** gRPC status codes that mean containerd is away rather than saying no */
const AWAY = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.CANCELLED])

export function asRuntimeError(err: grpc.ServiceError, socket: string): Error {
  if (AWAY.has(err.code))
    return new RuntimeUnavailableError(`containerd is unreachable at ${socket}: ${err.details}`, err)
  return Object.assign(new Error(err.details || err.message), { cause: err, code: err.code })
}

export function isNotFound(err: unknown): boolean {
  return (err as { code?: number }).code === grpc.status.NOT_FOUND
}

/** a protobuf Timestamp in unix milliseconds; null when unset */
export function timestampMs(ts: Timestamp | null | undefined): number | null {
  if (!ts || (!ts.seconds && !ts.nanos)) return null
  return (ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)
}

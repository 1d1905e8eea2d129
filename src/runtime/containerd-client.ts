// The gRPC clients of one containerd socket: the CRI ImageService (what the kubelet itself calls,
// for pulls with the CRI's registry config and the CRI's view of pinned images) and containerd's
// own services for what CRI does not say (every container, image labels, content and snapshot
// sizes, tasks, events). The .proto files under proto/ hold only the messages used here.
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type * as Grpc from '@grpc/grpc-js'
import type * as ProtoLoader from '@grpc/proto-loader'
import type Protobuf from 'protobufjs'
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

type AnyClient = Grpc.Client & Record<string, (...args: unknown[]) => Grpc.ClientUnaryCall>

/**
 * gRPC and protobuf (about 17 MiB of RSS) are loaded when a containerd client is first made, not with the
 * module: every agent imports the runtime, and most speak to Docker. They are CommonJS, so a
 * synchronous require keeps the client's methods synchronous.
 */
let libs: { grpc: typeof Grpc; protoLoader: typeof ProtoLoader; protobuf: typeof Protobuf } | null = null
function grpcLibs(): NonNullable<typeof libs> {
  if (!libs) {
    const require = createRequire(import.meta.url)
    libs = {
      grpc: require('@grpc/grpc-js') as typeof Grpc,
      protoLoader: require('@grpc/proto-loader') as typeof ProtoLoader,
      protobuf: require('protobufjs') as typeof Protobuf,
    }
  }
  return libs
}

let loaded: { def: Grpc.GrpcObject; payloads: Protobuf.Root } | null = null
function load(): { def: Grpc.GrpcObject; payloads: Protobuf.Root } {
  if (!loaded) {
    const { grpc, protoLoader, protobuf } = grpcLibs()
    const pkg = protoLoader.loadSync(FILES, LOAD_OPTIONS)
    const payloads = new protobuf.Root()
    payloads.resolvePath = (_origin, target) => (target.startsWith('google/') ? target : PROTO_DIR + target)
    payloads.loadSync(['containerd/event-payloads.proto', 'containerd/image-events.proto'], { keepCase: false })
    loaded = { def: grpc.loadPackageDefinition(pkg), payloads }
  }
  return loaded
}

function serviceCtor(path: string): Grpc.ServiceClientConstructor {
  let node: Grpc.GrpcObject | Grpc.ServiceClientConstructor = load().def
  for (const part of path.split('.')) node = (node as Grpc.GrpcObject)[part] as Grpc.GrpcObject
  return node as unknown as Grpc.ServiceClientConstructor
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
  private readonly metadata: Grpc.Metadata

  constructor(
    readonly socket: string,
    readonly namespace: string,
    private readonly defaultDeadlineMs: number,
  ) {
    this.metadata = new (grpcLibs().grpc.Metadata)()
    // containerd scopes every call to the namespace this header names; CRI keeps to its own (k8s.io).
    this.metadata.set('containerd-namespace', namespace)
  }

  private client(service: ServiceName): AnyClient {
    let c = this.clients.get(service)
    if (!c) {
      const Ctor = serviceCtor(SERVICES[service])
      c = new Ctor(`unix://${this.socket}`, grpcLibs().grpc.credentials.createInsecure(), {
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
      const call = c[method]!.call(c, request, this.metadata, { deadline }, (err: Grpc.ServiceError | null, res: T) =>
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
      const stream = c[method]!.call(c, request, this.metadata, { deadline }) as unknown as Grpc.ClientReadableStream<T>
      stream.on('data', (m: T) => out.push(m))
      stream.on('error', (err: Grpc.ServiceError) => reject(asRuntimeError(err, this.socket)))
      stream.on('end', () => resolve(out))
    })
  }

  /** an open server stream with no deadline (the event subscription) */
  stream<T>(service: ServiceName, method: string, request: object): Grpc.ClientReadableStream<T> {
    const c = this.client(service)
    return c[method]!.call(c, request, this.metadata) as unknown as Grpc.ClientReadableStream<T>
  }

  /** decodes an event's payload by its type URL; null for a type not described in proto/ */
  decodeAny(any: WireAny): EventPayload | null {
    const name = (any.typeUrl ?? '').replace(/^.*\//, '')
    let type: Protobuf.Type
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
function isAway(code: Grpc.status): boolean {
  const { status } = grpcLibs().grpc
  return code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED || code === status.CANCELLED
}

export function asRuntimeError(err: Grpc.ServiceError, socket: string): Error {
  if (isAway(err.code))
    return new RuntimeUnavailableError(`containerd is unreachable at ${socket}: ${err.details}`, err)
  return Object.assign(new Error(err.details || err.message), { cause: err, code: err.code })
}

export function isNotFound(err: unknown): boolean {
  return (err as { code?: number }).code === grpcLibs().grpc.status.NOT_FOUND
}

/** a protobuf Timestamp in unix milliseconds; null when unset */
export function timestampMs(ts: Timestamp | null | undefined): number | null {
  if (!ts || (!ts.seconds && !ts.nanos)) return null
  return (ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)
}

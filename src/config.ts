// The one configuration schema: every key, its default and its bounds live here and nowhere else.
import { labelKeySchema, labelsSchema } from './labels.js'
import { closeSync, constants as fsConstants, existsSync, fstatSync, openSync, readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { describeZodIssues } from './validation.js'
import { isCronExpression } from './schedule.js'
import { imageRefSchema } from './image-ref-schema.js'
import { ConfigError } from './errors.js'
import { isBaseUrl } from './protocol.js'

const percent = z.number().min(0).max(100)
const seconds = z.number().positive()
const wsUrl = z.string().regex(/^wss?:\/\//, 'must start with ws:// or wss://')
const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'must be HOST:PORT')
const cronOrNull = z
  .string()
  .min(1)
  .refine(
    (v) => isCronExpression(v),
    'must be a cron expression (minute hour day month weekday, optionally seconds first)',
  )
  .nullable()

/**
 * One named prune schedule: when it fires, a prune runs with these rules in place of the top-level
 * ones (a key left out keeps prune's own value). Deep runs also prune the build cache (with
 * prune.buildCache) and dangling volumes (with prune.volumes.dangling) whatever the usage.
 */
const pruneScheduleSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'lower-case letters, digits, ".", "_" and "-", at most 63'),
  cron: cronOrNull.unwrap(),
  deep: z.boolean().default(false),
  maxUnusedSeconds: z.number().positive().nullable().optional(),
  include: z.array(z.string().min(1)).optional(),
  exclude: z.array(z.string().min(1)).optional(),
  thresholdScope: z.enum(['all', 'include']).optional(),
  maxImageBytes: z.number().int().positive().nullable().optional(),
})

export type PruneSchedule = z.infer<typeof pruneScheduleSchema>

/** the largest WebSocket frame either side of the agent link sends or accepts, unless configured */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024
const maxFrameBytes = z.number().int().min(1024).default(DEFAULT_MAX_FRAME_BYTES)

export const agentConfigSchema = z
  .strictObject({
    hostId: z
      .string()
      .min(1)
      .default(() => hostname()),
    /** Kubernetes-style labels of this host, sent to the coordinator; its GET /v1/hosts?selector= filters by them */
    labels: labelsSchema.default({}),
    listen: hostPort.default('127.0.0.1:9477'),
    /** the largest request body the agent's HTTP API reads */
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .default(256 * 1024),
    tokenFile: z.string().min(1).nullable().default('/etc/gpuhost/token'),
    stateDir: z.string().min(1).default('/var/lib/gpuhost'),
    state: z
      .strictObject({
        /** a file of this size is kept in stateDir and released when the disk is full, so state can still be written */
        reserveBytes: z
          .number()
          .int()
          .min(0)
          .default(8 * 1024 * 1024),
      })
      .prefault({}),
    http: z
      .strictObject({
        /** a request whose body has not fully arrived this long after its headers is cut */
        bodyTimeoutSeconds: seconds.default(10),
        /**
         * names a request's `Host:` may carry besides an IP address, localhost, this machine's hostname
         * and the listen address's name (`.example.com`: that domain and every name under it); any other
         * answers 421, so a page using DNS rebinding cannot read the API from a browser
         */
        allowedHosts: z
          .array(z.string().regex(/^\.?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/, 'a host name, or .domain'))
          .max(256)
          .default([]),
      })
      .prefault({}),
    docker: z
      .strictObject({
        socket: z.string().min(1).default('/var/run/docker.sock'),
        timeoutSeconds: seconds.default(30),
        /** images and containers are refreshed on Docker events; this periodic run is only a safety net */
        refreshIntervalSeconds: seconds.default(300),
        /** how often Docker is pinged: its health in /v1/status and the metrics comes from this */
        pingIntervalSeconds: seconds.default(10),
        /**
         * a ping not answered within this long marks Docker unreachable (a frozen dockerd accepts and
         * never answers)
         */
        pingTimeoutSeconds: seconds.default(3),
      })
      .prefault({}),
    /**
     * the container engine: Docker (the docker.* keys) or containerd over its gRPC socket, in one
     * namespace (k8s.io, the kubelet's). Timeouts and intervals come from docker.* for both.
     */
    runtime: z
      .strictObject({
        kind: z.enum(['docker', 'containerd']).default('docker'),
        /** containerd's gRPC socket; null: /run/containerd/containerd.sock */
        socket: z.string().min(1).nullable().default(null),
        namespace: z.string().min(1).default('k8s.io'),
        /**
         * the kubelet's config file, read by `gpuhost check`/`status` for its image GC thresholds;
         * absent is fine (no kubelet on this host)
         */
        kubeletConfig: z.string().min(1).default('/var/lib/kubelet/config.yaml'),
      })
      .prefault({}),
    gpu: z
      .strictObject({
        nvidiaSmi: z.string().min(1).default('nvidia-smi'),
        timeoutSeconds: seconds.default(10),
        intervalSeconds: seconds.default(30),
        /**
         * GPU memory per container (gpuhost_container_gpu_memory_bytes): each pid nvidia-smi lists is
         * mapped to its container through /proc/PID/cgroup, so the host's processes must be visible:
         * systemd's ProtectProc=default (the shipped unit), a container in the host PID namespace
         */
        containerMemory: z.boolean().default(true),
      })
      .prefault({}),
    disk: z
      .strictObject({
        path: z.string().min(1).nullable().default(null),
        checkIntervalSeconds: seconds.default(60),
        /** the runtime's disk accounting (Docker's /system/df) walks every layer: hourly, and on demand */
        breakdownIntervalSeconds: seconds.default(3600),
        /** containers with the largest logs listed in /v1/status */
        breakdownTopLogs: z.number().int().min(0).max(100).default(10),
        /** a container log larger than this raises a disk.log_large event; null: off */
        logWarnBytes: z.number().int().positive().nullable().default(null),
      })
      .prefault({}),
    prune: z
      .strictObject({
        highPercent: percent.default(85),
        lowPercent: percent.default(80),
        minAgeSeconds: z.number().min(0).default(3600),
        protect: z.array(z.string().min(1)).default([]),
        /** an image with one of these labels (`key` or `key=value`) is never removed */
        protectLabels: z.array(z.string().min(1)).default(['gpuhost.keep']),
        keepPerRepository: z.number().int().min(0).default(0),
        schedule: cronOrNull.default('0 3 * * 0'),
        buildCache: z.boolean().default(false),
        /** images unused (last used, or first seen when never used) longer than this go on every run,
         * whatever the usage, behind every other guard; null: off */
        maxUnusedSeconds: z.number().positive().nullable().default(null),
        /** globs on references: what the age rule may take (empty: every image) */
        include: z.array(z.string().min(1)).default([]),
        /** globs on references the age rule never takes */
        exclude: z.array(z.string().min(1)).default([]),
        /** "include": the threshold, too, takes only images in that scope */
        thresholdScope: z.enum(['all', 'include']).default('all'),
        /** a budget for the images' unique bytes, kept on every run whatever the usage; null: off */
        maxImageBytes: z.number().int().positive().nullable().default(null),
        /** dangling volumes (no container refers to them), removed only by deep runs (prune.schedules[].deep) */
        volumes: z
          .strictObject({
            dangling: z.boolean().default(false),
            /** named volumes too, not only the anonymous ones Docker made for a container (`docker run -v /path`) */
            named: z.boolean().default(false),
            /** a volume with one of these labels (`key` or `key=value`) is never removed */
            protectLabels: z.array(z.string().min(1)).default(['gpuhost.keep']),
          })
          .prefault({}),
        /** named schedules beside prune.schedule, each with its own rules for its runs */
        schedules: z
          .array(pruneScheduleSchema)
          .default([])
          .refine((list) => new Set(list.map((s) => s.name)).size === list.length, 'schedule names must be unique'),
        /** stopped containers keep their image (and their writable layer and log) alive */
        containers: z
          .strictObject({
            /** exited containers finished longer ago than this are removed before images are planned; null: off */
            exitedOlderThanSeconds: z.number().min(0).nullable().default(null),
            /** the newest N exited containers of each image stay whatever their age */
            keepPerImage: z.number().int().min(0).default(0),
            /** a container with one of these labels (`key` or `key=value`) is never removed */
            protectLabels: z.array(z.string().min(1)).default(['gpuhost.keep']),
          })
          .prefault({}),
      })
      .prefault({}),
    prewarm: z
      .strictObject({
        schedule: cronOrNull.default('0 2 * * *'),
        images: z.array(imageRefSchema).default([]),
        mirrors: z.record(z.string(), z.array(z.string().min(1))).default({}),
        concurrency: z.number().int().min(1).max(32).default(2),
        /** registry look-ups in parallel before planning; null: as many as pulls, at least 2 */
        inspectConcurrency: z.number().int().min(1).max(32).nullable().default(null),
        retries: z.number().int().min(0).max(20).default(3),
        /** a pull attempt is cut when the runtime reports no progress (no byte, no layer extracted) this long */
        stallSeconds: seconds.default(120),
        /** an outer bound on one pull attempt from one source; null: none (a large image on a slow link) */
        attemptTimeoutSeconds: seconds.nullable().default(null),
        credentialsFile: z.string().min(1).nullable().default(null),
        /** extracted size ÷ compressed download size assumed when checking disk room before a pull */
        expansionFactor: z.number().min(1).max(20).default(2.5),
      })
      .prefault({}),
    peers: z
      .strictObject({
        /** serve the images rollouts hold here to other hosts of the fleet (GET /v1/images/{id}/export) */
        serve: z.boolean().default(false),
        /** the peer listener's own address: apart from the API, so it can face the fleet network alone */
        listen: hostPort.default('0.0.0.0:9479'),
        /**
         * the URL other hosts reach the peer listener at, told to the coordinator (http://10.0.3.7:9479);
         * null: http://LISTEN when `listen` names one address. A wildcard listen (0.0.0.0, ::) says
         * nothing about which address the fleet can reach, so such a host is not named as a source
         * until this is set.
         */
        advertiseUrl: z
          .url({ protocol: /^https?$/ })
          .max(2000)
          .refine((u) => isBaseUrl(u), { message: 'must be http(s)://HOST:PORT, without path or query' })
          .nullable()
          .default(null),
        /**
         * image exports streamed at once; one more answers 503 (Retry-After 5): the fetcher tries its
         * next source, then asks again, 3 times at most
         */
        maxUploads: z.number().int().min(1).max(64).default(2),
        /** all uploads together at most this many bytes per second; null: no limit */
        maxUploadBytesPerSecond: z.number().int().min(1024).nullable().default(null),
        /**
         * fetch from peers whose address is loopback (127.0.0.0/8, ::1): only for a fleet on one
         * machine. Off, a peer URL naming or resolving to loopback is refused before anything is sent,
         * as link-local, unspecified, multicast and broadcast addresses always are
         */
        allowLoopback: z.boolean().default(false),
        /** peer tokens travel in a header: https for the listener (certFile and keyFile, read at start),
         * and the fleet CA this host trusts when it fetches from an https:// peer (caFile, read per fetch;
         * null: the system CAs) */
        tls: z
          .strictObject({
            certFile: z.string().min(1).nullable().default(null),
            keyFile: z.string().min(1).nullable().default(null),
            caFile: z.string().min(1).nullable().default(null),
          })
          .refine((t) => (t.certFile === null) === (t.keyFile === null), {
            message: 'certFile and keyFile go together',
            path: ['keyFile'],
          })
          .prefault({}),
      })
      .refine((p) => p.advertiseUrl === null || p.advertiseUrl.startsWith('https:') === (p.tls.certFile !== null), {
        message: 'must be https:// exactly when peers.tls serves https (certFile)',
        path: ['advertiseUrl'],
      })
      .prefault({}),
    coordinator: z
      .strictObject({
        /** one URL, or a list of coordinator replicas tried in turn: a failed or closed connection moves to the
         * next one after the reconnect backoff, and the one that accepts is kept until it fails */
        url: z
          .union([wsUrl, z.array(wsUrl).min(1).max(32)])
          .nullable()
          .default(null),
        tokenFile: z.string().min(1).nullable().default(null),
        caFile: z.string().min(1).nullable().default(null),
        snapshotIntervalSeconds: seconds.default(60),
        outboxMaxEvents: z.number().int().min(100).default(10000),
        /** a ping goes out this often; no pong by the next one means the peer is dead */
        pingIntervalSeconds: seconds.default(15),
        /** reconnect delays grow from 0.5 s to this, with jitter */
        reconnectMaxSeconds: seconds.default(60),
        /** frames larger than this are neither sent nor accepted; the coordinator's maxFrameBytes should match */
        maxFrameBytes,
        /** entries sent and not acked within this time are sent again, in order, on the same connection */
        resendSeconds: seconds.default(30),
      })
      .prefault({}),
    kubernetes: z
      .strictObject({
        /** a Node Feature Discovery features.d file kept up to date with this host's labels; null: off */
        nfdFeaturesFile: z.string().min(1).nullable().default(null),
        /** the prefix of those labels: a lowercase DNS subdomain NFD allows */
        labelPrefix: z
          .string()
          .max(253)
          .regex(
            /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
            'must be a lowercase DNS subdomain',
          )
          .default('gpuhost.io'),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
      })
      .prefault({}),
  })
  .check(
    z.refine((c) => c.prune.highPercent >= 100 || c.prune.lowPercent < c.prune.highPercent, {
      path: ['prune', 'lowPercent'],
      message: 'must be below prune.highPercent',
      // Run even when other keys are bad, so one pass names every bad key; skip only if either value is itself bad.
      when: (payload) => {
        const prune = (payload.value as { prune?: { lowPercent?: unknown; highPercent?: unknown } })?.prune
        return typeof prune?.lowPercent === 'number' && typeof prune?.highPercent === 'number'
      },
    }),
  )

export type AgentConfig = z.infer<typeof agentConfigSchema>

/** coordinator.url as a list: the replicas in the order they are tried */
export function coordinatorUrls(coordinator: Pick<AgentConfig['coordinator'], 'url'>): string[] {
  const { url } = coordinator
  return url === null ? [] : typeof url === 'string' ? [url] : url
}

/** registry look-ups a prewarm runs in parallel: prewarm.inspectConcurrency, else max(2, concurrency) */
export function inspectConcurrency(
  prewarm: Pick<AgentConfig['prewarm'], 'concurrency' | 'inspectConcurrency'>,
): number {
  return prewarm.inspectConcurrency ?? Math.max(2, prewarm.concurrency)
}

export const coordinatorConfigSchema = z.strictObject({
  listen: hostPort.default('127.0.0.1:9478'),
  adminTokenFile: z.string().min(1).nullable().default('/etc/gpuhost/admin-token'),
  /** per-host: each agent holds a token bound to its host id (`gpuhost coordinator token HOSTID`);
   * shared: the one agentTokenFile token also speaks for any host (a warning at start) */
  agentAuth: z.enum(['per-host', 'shared']).default('per-host'),
  /** the secret per-host agent tokens are derived from and verified with */
  agentSecretFile: z.string().min(1).nullable().default('/etc/gpuhost/agent-secret'),
  /** the shared agent token, read only with agentAuth: shared */
  agentTokenFile: z.string().min(1).nullable().default('/etc/gpuhost/agent-token'),
  /** serve https:// and wss:// directly; with clientCaFile, a client certificate naming the host
   * also authenticates an agent */
  tls: z
    .strictObject({
      certFile: z.string().min(1),
      keyFile: z.string().min(1),
      clientCaFile: z.string().min(1).nullable().default(null),
    })
    .nullable()
    .default(null),
  /** /metrics needs the admin token too */
  metricsAuth: z.boolean().default(false),
  dataDir: z.string().min(1).default('/var/lib/gpuhost-coordinator'),
  /** where the fleet state lives: sqlite in dataDir (one process), or PostgreSQL shared by several replicas */
  store: z
    .strictObject({
      kind: z.enum(['sqlite', 'postgres']).default('sqlite'),
      /** postgres: a connection URL, e.g. postgres://gpuhost@db.example:5432/gpuhost?sslmode=verify-full */
      url: z
        .string()
        .regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://')
        .nullable()
        .default(null),
      /** postgres: a file holding the password, kept out of the URL and this config */
      passwordFile: z.string().min(1).nullable().default(null),
      /** postgres: connections each replica keeps open (one more listens for new commands) */
      poolSize: z.number().int().min(2).max(100).default(10),
      /** postgres: each replica beats this often; one silent for three beats is taken as dead and its
       * hosts as disconnected */
      heartbeatSeconds: seconds.default(5),
    })
    .prefault({})
    .check(
      z.refine((s) => s.kind !== 'postgres' || s.url !== null, {
        path: ['url'],
        message: 'is required with kind: postgres',
      }),
    ),
  maxFrameBytes,
  /** the largest request body the coordinator's HTTP API reads (a command's args, an Alertmanager payload) */
  maxBodyBytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  /** each agent is pinged this often; no pong by the next ping closes its connection */
  pingIntervalSeconds: seconds.default(30),
  /** a command without a result from its host within this time fails */
  commandTimeoutSeconds: seconds.default(3600),
  /** what a rollout that does not say otherwise uses when hosts serve each other images (peers.serve) */
  rollouts: z
    .strictObject({
      /** hosts of a rollout that read an image from its registry, in total over the rollout (per value of
       * peerAffinityLabel; a failed pull gives its turn back); the others wait for a peer that holds it */
      registryParallel: z.number().int().min(1).max(10_000).default(1),
      /** a host label such as `rack`: peers with the fetching host's value are preferred, and registry
       * turns are counted per value (the registry read once per rack); null: the fleet is one group */
      peerAffinityLabel: labelKeySchema.nullable().default(null),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
    })
    .prefault({}),
})

export type CoordinatorConfig = z.infer<typeof coordinatorConfigSchema>

// Kept in errors.ts so that the CLI can catch it without loading the schema (zod, yaml, croner).
export { ConfigError }

export const DEFAULT_AGENT_CONFIG_FILE = '/etc/gpuhost/agent.yaml'
export const DEFAULT_COORDINATOR_CONFIG_FILE = '/etc/gpuhost/coordinator.yaml'

/** --config, else $GPUHOST_CONFIG, else the system file when it exists, else none (defaults). */
export function resolveConfigFile(flag: string | undefined, systemFile: string): string | null {
  if (flag) return flag
  if (process.env.GPUHOST_CONFIG) return process.env.GPUHOST_CONFIG
  return existsSync(systemFile) ? systemFile : null
}

export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown, file: string | null = null): z.infer<S> {
  const result = schema.safeParse(raw ?? {})
  if (result.success) return result.data
  throw new ConfigError(
    file,
    result.error.issues.map((issue) => describeZodIssues([issue], '(top level)')),
  )
}

export function loadConfigFile<S extends z.ZodType>(schema: S, file: string | null): z.infer<S> {
  if (file === null) return parseConfig(schema, {}, null)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`])
  }
  let raw: unknown
  try {
    raw = parseYaml(text, { prettyErrors: true })
  } catch (err) {
    throw new ConfigError(file, [`not valid YAML: ${(err as Error).message.split('\n')[0]}`])
  }
  if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw new ConfigError(file, ['(top level): must be a mapping of keys to values'])
  }
  return parseConfig(schema, raw, file)
}

export function loadAgentConfig(flag?: string): AgentConfig {
  return loadConfigFile(agentConfigSchema, resolveConfigFile(flag, DEFAULT_AGENT_CONFIG_FILE))
}

export function loadCoordinatorConfig(flag?: string): CoordinatorConfig {
  return loadConfigFile(coordinatorConfigSchema, resolveConfigFile(flag, DEFAULT_COORDINATOR_CONFIG_FILE))
}

/**
 * Reads a bearer token file; null when the file is unset. Throws with the path when unreadable,
 * empty, or open to other users: readable or writable by others, writable by its group, or readable
 * by its group unless root owns it (root provisions the file for the service's group, as a kubelet
 * does for a Secret with fsGroup; the same rule PostgreSQL applies to its key file).
 */
export function readTokenFile(file: string | null): string | null {
  if (file === null) return null
  // Non-blocking: a FIFO or a device at the path must not hang the process (it is refused below).
  const fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK)
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new Error(`token file ${file} is not a regular file`)
    if (st.size > MAX_TOKEN_FILE_BYTES) throw new Error(`token file ${file} is over ${MAX_TOKEN_FILE_BYTES} bytes`)
    const { mode, uid } = st
    // Another user owning it could set the token; only the service's own user, or root, may.
    const euid = process.geteuid?.()
    if (euid !== undefined && uid !== euid && uid !== 0)
      throw new Error(
        `token file ${file} is owned by uid ${uid}, not by the user the service runs as (${euid}) or root: ` +
          `chown it to the service's user`,
      )
    const exposed = tokenFileExposure(mode, uid)
    if (exposed)
      throw new Error(
        `token file ${file} is ${exposed} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): ` +
          `chmod 600 ${file} and make the user the service runs as its owner (or chmod 640 with root its owner ` +
          "and the service's group its group)",
      )
    const token = readFileSync(fd, 'utf8').trim()
    if (!token) throw new Error(`token file ${file} is empty`)
    return token
  } finally {
    closeSync(fd)
  }
}

/** a token, a secret or a password is a line; a larger file is not one (and is not read whole) */
const MAX_TOKEN_FILE_BYTES = 64 * 1024

/** how a token file with this mode and owner is open to users other than the service's; null when it is not */
export function tokenFileExposure(mode: number, uid: number): string | null {
  if (mode & 0o004) return 'readable by others'
  if (mode & 0o002) return 'writable by others'
  if (mode & 0o020) return 'writable by its group'
  if (mode & 0o040 && uid !== 0) return 'readable by its group and not owned by root'
  return null
}

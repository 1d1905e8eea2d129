// The one configuration schema: every key, its default and its bounds live here and nowhere else.
import { labelKeySchema, labelsSchema } from './labels.js'
import { closeSync, constants as fsConstants, existsSync, fstatSync, openSync, readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { describeZodIssues, isBaseUrl } from './validation.js'
import { isCronExpression, isTimeZone } from './schedule.js'
import { imageRefSchema } from './image-ref-schema.js'
import { ConfigError } from './errors.js'

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

const pruneScheduleSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'lower-case letters, digits, ".", "_" and "-", at most 63')
      .describe(
        "the schedule's name, unique among prune.schedules: `gpuhost prune --schedule NAME` and " +
          'POST /v1/prune {"schedule": NAME} run its rules now, and its runs\' audit lines name it',
      ),
    cron: cronOrNull.unwrap().describe('when its runs fire: a cron expression in schedule.timezone, as prune.schedule'),
    deep: z
      .boolean()
      .default(false)
      .describe(
        'a deep run: besides its images it also prunes the build cache (with prune.buildCache) and ' +
          'dangling volumes (with prune.volumes.dangling), whatever the usage',
      ),
    maxUnusedSeconds: z
      .number()
      .positive()
      .nullable()
      .optional()
      .describe("replaces prune.maxUnusedSeconds for this schedule's runs; left out: prune's own value"),
    include: z
      .array(z.string().min(1))
      .optional()
      .describe("replaces prune.include for this schedule's runs; left out: prune's own value"),
    exclude: z
      .array(z.string().min(1))
      .optional()
      .describe("replaces prune.exclude for this schedule's runs; left out: prune's own value"),
    thresholdScope: z
      .enum(['all', 'include'])
      .optional()
      .describe("replaces prune.thresholdScope for this schedule's runs; left out: prune's own value"),
    maxImageBytes: z
      .number()
      .int()
      .positive()
      .nullable()
      .optional()
      .describe("replaces prune.maxImageBytes for this schedule's runs; left out: prune's own value"),
  })
  .describe(
    'one named prune schedule: when it fires, a prune runs with these rules in place of the top-level ' +
      "ones (a key left out keeps prune's own value)",
  )

export type PruneSchedule = z.infer<typeof pruneScheduleSchema>

/** the largest WebSocket frame either side of the agent link sends or accepts, unless configured */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024
const maxFrameBytes = z.number().int().min(1024).default(DEFAULT_MAX_FRAME_BYTES)

export const agentConfigSchema = z
  .strictObject({
    hostId: z
      .string()
      .min(1)
      .default(() => hostname())
      // The default is the hostname of the machine the agent runs on: the reference says so in words.
      .meta({
        description:
          "this host's id: the coordinator knows the host by it, and its host token " +
          '(`gpuhost coordinator token HOSTID`) is bound to it',
        defaultText: "the machine's hostname",
      }),
    labels: labelsSchema
      .default({})
      .describe(
        'Kubernetes-style labels of this host ({ rack: a, gpu: h100 }), sent to the coordinator; ' +
          'its GET /v1/hosts?selector= filters by them',
      ),
    listen: hostPort
      .default('127.0.0.1:9477')
      .describe("the HTTP API's address (HOST:PORT): metrics, health, status, webhook"),
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .default(256 * 1024)
      .describe("the largest request body the agent's HTTP API reads; a larger one answers 413"),
    tokenFile: z
      .string()
      .min(1)
      .nullable()
      .default('/etc/gpuhost/token')
      .describe('the bearer token every POST needs; null, unreadable or open to other users: POSTs answer 403'),
    stateDir: z
      .string()
      .min(1)
      .default('/var/lib/gpuhost')
      .describe('durable state: image last-used times, the outbox, removals in flight'),
    state: z
      .strictObject({
        reserveBytes: z
          .number()
          .int()
          .min(0)
          .default(8 * 1024 * 1024)
          .describe(
            'a file of this size is kept in stateDir and released when the disk is full, so state can ' +
              'still be written; 0: none',
          ),
      })
      .prefault({})
      .describe("the agent's own state in stateDir"),
    http: z
      .strictObject({
        bodyTimeoutSeconds: seconds
          .default(10)
          .describe('a request whose body has not fully arrived this long after its headers is cut (408)'),
        allowedHosts: z
          .array(
            z
              .string()
              .regex(/^\.?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/, 'a host name, or .domain')
              // `.com` would let any name under a public suffix through: a domain has two labels at least
              .refine((h) => !/^\.[^.]+\.?$/.test(h), 'a .domain needs two labels at least (.dc.example, not .com)'),
          )
          .max(256)
          .default([])
          .describe(
            "names a request's `Host:` may carry besides an IP address, localhost, this machine's " +
              "hostname and the listen address's name (`.example.com`: that domain and every name under " +
              'it; a domain you control, two labels at least); any other answers 421, so a page using DNS ' +
              'rebinding cannot read the API from a browser',
          ),
      })
      .prefault({})
      .describe("the agent's HTTP API"),
    docker: z
      .strictObject({
        socket: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe(
            "the Docker Engine API's unix socket; null: where DOCKER_HOST says (unix://, tcp:// with " +
              'DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, ssh://), else /var/run/docker.sock',
          ),
        timeoutSeconds: seconds.default(30).describe('a call to the runtime with no answer for this long fails'),
        refreshIntervalSeconds: seconds
          .default(300)
          .describe('images and containers are refreshed on Docker events; this periodic run is only a safety net'),
        pingIntervalSeconds: seconds
          .default(10)
          .describe('how often Docker is pinged: its health in /v1/status and the metrics comes from this'),
        pingTimeoutSeconds: seconds
          .default(3)
          .describe(
            'a ping not answered within this long marks Docker unreachable (a frozen dockerd accepts and ' +
              'never answers)',
          ),
      })
      .prefault({})
      .describe('Docker, and the timeouts and intervals of whichever runtime runtime.kind names'),
    runtime: z
      .strictObject({
        kind: z
          .enum(['docker', 'containerd'])
          .default('docker')
          .describe('the container engine: Docker (docker.socket) or containerd (runtime.socket)'),
        socket: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe("containerd's gRPC socket; null: /run/containerd/containerd.sock"),
        namespace: z
          .string()
          .min(1)
          .default('k8s.io')
          .describe("the containerd namespace the images live in: k8s.io is the kubelet's (CRI's)"),
        kubeletConfig: z
          .string()
          .min(1)
          .default('/var/lib/kubelet/config.yaml')
          .describe(
            "the kubelet's config file, read by `gpuhost check`/`status` for its image GC thresholds; " +
              'absent is fine (no kubelet on this host)',
          ),
      })
      .prefault({})
      .describe(
        'the container engine: Docker (the docker.* keys) or containerd over its gRPC socket, in one ' +
          "namespace (k8s.io, the kubelet's). Timeouts and intervals come from docker.* for both.",
      ),
    gpu: z
      .strictObject({
        nvidiaSmi: z
          .string()
          .min(1)
          .default('nvidia-smi')
          .describe('the nvidia-smi command: a name on PATH, or a path'),
        timeoutSeconds: seconds.default(10).describe('an nvidia-smi run that takes longer is killed and fails'),
        intervalSeconds: seconds.default(30).describe('how often the GPU facts and metrics are read'),
        containerMemory: z
          .boolean()
          .default(true)
          .describe(
            'GPU memory per container (gpuhost_container_gpu_memory_bytes): each pid nvidia-smi lists is ' +
              "mapped to its container through /proc/PID/cgroup, so the host's processes must be visible: " +
              "systemd's ProtectProc=default (the shipped unit), a container in the host PID namespace",
          ),
      })
      .prefault({})
      .describe('the GPU collector (nvidia-smi)'),
    disk: z
      .strictObject({
        path: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe("the path whose filesystem is measured and pruned; null: the runtime's root dir (Docker's)"),
        checkIntervalSeconds: seconds
          .default(60)
          .describe('how often the disk usage is read; the disk watcher prunes when it is at prune.highPercent'),
        breakdownIntervalSeconds: seconds
          .default(3600)
          .describe("the runtime's disk accounting (Docker's /system/df) walks every layer: hourly, and on demand"),
        breakdownTopLogs: z
          .number()
          .int()
          .min(0)
          .max(100)
          .default(10)
          .describe('containers with the largest logs listed in /v1/status'),
        logWarnBytes: z
          .number()
          .int()
          .positive()
          .nullable()
          .default(null)
          .describe('a container log larger than this raises a disk.log_large event; null: off'),
      })
      .prefault({})
      .describe('disk usage and where the space is'),
    schedule: z
      .strictObject({
        timezone: z
          .string()
          .max(64)
          // a name, not an offset or anything else Intl might also take
          .refine(
            (v) => /^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(v) && isTimeZone(v),
            'must be an IANA time zone name this Node.js knows, such as Europe/Berlin or UTC',
          )
          .nullable()
          .default(null)
          .describe(
            'the IANA time zone (Europe/Berlin, UTC) every cron expression is read in: prune.schedule, ' +
              "prune.schedules[].cron, prewarm.schedule; null: the host's own zone",
          ),
      })
      .prefault({})
      .describe('how cron expressions are read'),
    prune: z
      .strictObject({
        highPercent: percent
          .default(85)
          .describe('a prune starts when disk usage is at or above this; 100 switches the disk watcher off'),
        lowPercent: percent.default(80).describe('a prune frees down to this usage; must be below highPercent'),
        minAgeSeconds: z
          .number()
          .min(0)
          .default(3600)
          .describe('an image first seen or pulled more recently than this is never removed'),
        protect: z
          .array(z.string().min(1))
          .default([])
          .describe('globs on repo:tag or repo, or image ids: such an image is never removed'),
        protectLabels: z
          .array(z.string().min(1))
          .default(['gpuhost.keep'])
          .describe('an image with one of these labels (`key` or `key=value`) is never removed'),
        keepPerRepository: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('the newest N images of each repository stay; 0: off'),
        schedule: cronOrNull
          .default('0 3 * * 0')
          .describe(
            'a cron expression in schedule.timezone (5 fields, or 6 with seconds first) for a ' +
              'threshold run with the top-level rules; null: none',
          ),
        buildCache: z
          .boolean()
          .default(false)
          .describe('also prune the build cache: on deep runs, and on other runs when the threshold needs the bytes'),
        maxUnusedSeconds: z
          .number()
          .positive()
          .nullable()
          .default(null)
          .describe(
            'images unused (last used, or first seen when never used) longer than this go on every run, ' +
              'whatever the usage, behind every other guard; null: off',
          ),
        include: z
          .array(z.string().min(1))
          .default([])
          .describe('globs on references: what the age rule may take (empty: every image)'),
        exclude: z.array(z.string().min(1)).default([]).describe('globs on references the age rule never takes'),
        thresholdScope: z
          .enum(['all', 'include'])
          .default('all')
          .describe('"include": the threshold, too, takes only images in that scope'),
        maxImageBytes: z
          .number()
          .int()
          .positive()
          .nullable()
          .default(null)
          .describe("a budget for the images' unique bytes, kept on every run whatever the usage; null: off"),
        volumes: z
          .strictObject({
            dangling: z
              .boolean()
              .default(false)
              .describe('deep runs remove dangling volumes; false: volumes are never removed'),
            named: z
              .boolean()
              .default(false)
              .describe(
                'named volumes too, not only the anonymous ones Docker made for a container ' +
                  '(`docker run -v /path`)',
              ),
            protectLabels: z
              .array(z.string().min(1))
              .default(['gpuhost.keep'])
              .describe('a volume with one of these labels (`key` or `key=value`) is never removed'),
          })
          .prefault({})
          .describe(
            'dangling volumes (no container refers to them), removed only by deep runs (prune.schedules[].deep)',
          ),
        schedules: z
          .array(pruneScheduleSchema)
          .default([])
          .refine((list) => new Set(list.map((s) => s.name)).size === list.length, 'schedule names must be unique')
          .describe('named schedules beside prune.schedule, each with its own rules for its runs'),
        containers: z
          .strictObject({
            exitedOlderThanSeconds: z
              .number()
              .min(0)
              .nullable()
              .default(null)
              .describe(
                'exited containers finished longer ago than this are removed before images are planned; null: off',
              ),
            keepPerImage: z
              .number()
              .int()
              .min(0)
              .default(0)
              .describe('the newest N exited containers of each image stay whatever their age'),
            protectLabels: z
              .array(z.string().min(1))
              .default(['gpuhost.keep'])
              .describe('a container with one of these labels (`key` or `key=value`) is never removed'),
          })
          .prefault({})
          .describe('stopped containers keep their image (and their writable layer and log) alive'),
      })
      .prefault({})
      .describe('what a prune removes, when, and what it never touches'),
    prewarm: z
      .strictObject({
        schedule: cronOrNull
          .default('0 2 * * *')
          .describe('a cron expression in schedule.timezone for a prewarm of the wanted set; null: none'),
        images: z
          .array(imageRefSchema)
          .default([])
          .describe(
            'images this host should hold (pin a version or a digest): with the images rollouts hold, the ' +
              'wanted set prewarm pulls and prune never removes',
          ),
        mirrors: z
          .record(z.string(), z.array(z.string().min(1)))
          .default({})
          .describe('mirrors per registry ({ "docker.io": ["mirror.internal"] }): tried in order, then the registry'),
        concurrency: z.number().int().min(1).max(32).default(2).describe('pulls at once'),
        inspectConcurrency: z
          .number()
          .int()
          .min(1)
          .max(32)
          .nullable()
          .default(null)
          .describe('registry look-ups in parallel before planning; null: as many as pulls, at least 2'),
        retries: z
          .number()
          .int()
          .min(0)
          .max(20)
          .default(3)
          .describe('retries of a failed pull, with exponential backoff and jitter'),
        stallSeconds: seconds
          .default(120)
          .describe(
            'a pull attempt is cut when the runtime reports no progress (no byte, no layer extracted) this long',
          ),
        attemptTimeoutSeconds: seconds
          .nullable()
          .default(null)
          .describe('an outer bound on one pull attempt from one source; null: none (a large image on a slow link)'),
        credentialsFile: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe('registry credentials: the `auths` of a Docker config.json; null: none'),
        expansionFactor: z
          .number()
          .min(1)
          .max(20)
          .default(2.5)
          .describe('extracted size ÷ compressed download size assumed when checking disk room before a pull'),
      })
      .prefault({})
      .describe('pulling the wanted images ahead of need'),
    peers: z
      .strictObject({
        serve: z
          .boolean()
          .default(false)
          .describe('serve the images rollouts hold here to other hosts of the fleet (GET /v1/images/{id}/export)'),
        listen: hostPort
          .default('0.0.0.0:9479')
          .describe("the peer listener's own address: apart from the API, so it can face the fleet network alone"),
        advertiseUrl: z
          .url({ protocol: /^https?$/ })
          .max(2000)
          .refine((u) => isBaseUrl(u), { message: 'must be http(s)://HOST:PORT, without path or query' })
          .nullable()
          .default(null)
          .describe(
            'the URL other hosts reach the peer listener at, told to the coordinator (http://10.0.3.7:9479); ' +
              'null: http://LISTEN when `listen` names one address. A wildcard listen (0.0.0.0, ::) says ' +
              'nothing about which address the fleet can reach, so such a host is not named as a source ' +
              'until this is set.',
          ),
        maxUploads: z
          .number()
          .int()
          .min(1)
          .max(64)
          .default(2)
          .describe(
            'image exports streamed at once; one more answers 503 (Retry-After 5): the fetcher tries its ' +
              'next source, then asks again, 3 times at most',
          ),
        maxUploadBytesPerSecond: z
          .number()
          .int()
          .min(1024)
          .nullable()
          .default(null)
          .describe('all uploads together at most this many bytes per second; null: no limit'),
        allowLoopback: z
          .boolean()
          .default(false)
          .describe(
            'fetch from peers whose address is loopback (127.0.0.0/8, ::1): only for a fleet on one ' +
              'machine. Off, a peer URL naming or resolving to loopback is refused before anything is sent, ' +
              'as link-local, unspecified, multicast and broadcast addresses always are',
          ),
        tls: z
          .strictObject({
            certFile: z
              .string()
              .min(1)
              .nullable()
              .default(null)
              .describe("the peer listener's certificate (PEM); with keyFile it serves https (read at start)"),
            keyFile: z
              .string()
              .min(1)
              .nullable()
              .default(null)
              .describe('the private key (PEM) of certFile; set both or neither'),
            caFile: z
              .string()
              .min(1)
              .nullable()
              .default(null)
              .describe(
                'the fleet CA https:// peers are checked against when fetching (read per fetch); null: the system CAs',
              ),
          })
          .refine((t) => (t.certFile === null) === (t.keyFile === null), {
            message: 'certFile and keyFile go together',
            path: ['keyFile'],
          })
          .prefault({})
          .describe(
            'peer tokens travel in a header: https for the listener (certFile and keyFile, read at start), ' +
              'and the fleet CA this host trusts when it fetches from an https:// peer (caFile, read per ' +
              'fetch; null: the system CAs)',
          ),
      })
      .refine((p) => p.advertiseUrl === null || p.advertiseUrl.startsWith('https:') === (p.tls.certFile !== null), {
        message: 'must be https:// exactly when peers.tls serves https (certFile)',
        path: ['advertiseUrl'],
      })
      .prefault({})
      .describe('hosts of the fleet serving each other the images rollouts hold'),
    coordinator: z
      .strictObject({
        url: z
          .union([wsUrl, z.array(wsUrl).min(1).max(32)])
          .nullable()
          .default(null)
          .describe(
            'ws://HOST:9478/v1/agents or wss://…: one URL, or a list of coordinator replicas tried in turn: ' +
              'a failed or closed connection moves to the next one after the reconnect backoff, and the one ' +
              'that accepts is kept until it fails; null: no coordinator',
          ),
        tokenFile: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe("this host's token: `gpuhost coordinator token HOSTID` on the coordinator prints it"),
        caFile: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe('a CA bundle (PEM) to trust for wss://; null: the system CAs'),
        snapshotIntervalSeconds: seconds
          .default(60)
          .describe("how often this host's facts are sent; they are also sent on change, at most every 2 s"),
        outboxMaxEvents: z
          .number()
          .int()
          .min(100)
          .default(10000)
          .describe(
            'events kept for the coordinator until it acks them; when full, the oldest progress events go, ' +
              'then informational ones, then any event; results never',
          ),
        pingIntervalSeconds: seconds
          .default(15)
          .describe('a ping goes out this often; no pong by the next one means the peer is dead'),
        reconnectMaxSeconds: seconds.default(60).describe('reconnect delays grow from 0.5 s to this, with jitter'),
        maxFrameBytes: maxFrameBytes.describe(
          "frames larger than this are neither sent nor accepted; the coordinator's maxFrameBytes should match",
        ),
        resendSeconds: seconds
          .default(30)
          .describe('entries sent and not acked within this time are sent again, in order, on the same connection'),
      })
      .prefault({})
      .describe('the link to a coordinator'),
    kubernetes: z
      .strictObject({
        nfdFeaturesFile: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe("a Node Feature Discovery features.d file kept up to date with this host's labels; null: off"),
        labelPrefix: z
          .string()
          .max(253)
          .regex(
            /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
            'must be a lowercase DNS subdomain',
          )
          .default('gpuhost.io')
          .describe('the prefix of those labels: a lowercase DNS subdomain NFD allows'),
      })
      .prefault({})
      .describe('node labels for Kubernetes'),
    log: z
      .strictObject({
        level: z
          .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])
          .default('info')
          .describe('the least severe level logged'),
      })
      .prefault({})
      .describe("the agent's log"),
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
  listen: hostPort
    .default('127.0.0.1:9478')
    .describe("the coordinator's address (HOST:PORT): its HTTP API and the agents' WebSocket, /v1/agents"),
  adminTokenFile: z
    .string()
    .min(1)
    .nullable()
    .default('/etc/gpuhost/admin-token')
    .describe('the bearer token for the HTTP API and the Alertmanager webhook'),
  agentAuth: z
    .enum(['per-host', 'shared'])
    .default('per-host')
    .describe(
      'per-host: each agent holds a token bound to its host id (`gpuhost coordinator token HOSTID`); ' +
        'shared: the one agentTokenFile token also speaks for any host (a warning at start)',
    ),
  agentSecretFile: z
    .string()
    .min(1)
    .nullable()
    .default('/etc/gpuhost/agent-secret')
    .describe('the secret per-host agent tokens are derived from and verified with'),
  agentTokenFile: z
    .string()
    .min(1)
    .nullable()
    .default('/etc/gpuhost/agent-token')
    .describe('the shared agent token, read only with agentAuth: shared'),
  tls: z
    .strictObject({
      certFile: z.string().min(1).describe('the server certificate (PEM)'),
      keyFile: z.string().min(1).describe('the private key (PEM) of certFile'),
      clientCaFile: z
        .string()
        .min(1)
        .nullable()
        .default(null)
        .describe(
          'a CA whose client certificates authenticate agents: one whose first DNS subjectAltName ' +
            '(else CN) is the host id stands for a token; null: tokens only',
        ),
    })
    .nullable()
    .default(null)
    .describe(
      'serve https:// and wss:// directly; with clientCaFile, a client certificate naming the host also ' +
        'authenticates an agent; null: plain http:// and ws://',
    ),
  metricsAuth: z.boolean().default(false).describe('/metrics needs the admin token too'),
  dataDir: z
    .string()
    .min(1)
    .default('/var/lib/gpuhost-coordinator')
    .describe('the directory of the SQLite database (unused with store.kind: postgres)'),
  store: z
    .strictObject({
      kind: z
        .enum(['sqlite', 'postgres'])
        .default('sqlite')
        .describe(
          'sqlite: one process, the database in dataDir; postgres: any number of replicas sharing one ' +
            'PostgreSQL database',
        ),
      url: z
        .string()
        .regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://')
        .nullable()
        .default(null)
        .describe(
          'postgres: a connection URL, e.g. postgres://gpuhost@db.example:5432/gpuhost?sslmode=verify-full ' +
            '(required with kind: postgres)',
        ),
      passwordFile: z
        .string()
        .min(1)
        .nullable()
        .default(null)
        .describe('postgres: a file holding the password, kept out of the URL and this config'),
      poolSize: z
        .number()
        .int()
        .min(2)
        .max(100)
        .default(10)
        .describe('postgres: connections each replica keeps open (one more listens for new commands)'),
      heartbeatSeconds: seconds
        .default(5)
        .describe(
          'postgres: each replica beats this often; one silent for three beats is taken as dead and its ' +
            'hosts as disconnected',
        ),
    })
    .prefault({})
    .check(
      z.refine((s) => s.kind !== 'postgres' || s.url !== null, {
        path: ['url'],
        message: 'is required with kind: postgres',
      }),
    )
    .describe('where the fleet state lives: sqlite in dataDir (one process), or PostgreSQL shared by several replicas'),
  maxFrameBytes: maxFrameBytes.describe(
    "agent frames larger than this are refused with an error message; the agents' coordinator.maxFrameBytes " +
      'should match',
  ),
  maxBodyBytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024)
    .describe(
      "the largest request body the coordinator's HTTP API reads (a command's args, an Alertmanager " +
        'payload); a larger one answers 413',
    ),
  pingIntervalSeconds: seconds
    .default(30)
    .describe('each agent is pinged this often; no pong by the next ping closes its connection'),
  commandTimeoutSeconds: seconds
    .default(3600)
    .describe('a command without a result from its host within this time fails'),
  rollouts: z
    .strictObject({
      registryParallel: z
        .number()
        .int()
        .min(1)
        .max(10_000)
        .default(1)
        .describe(
          'hosts of a rollout that read an image from its registry, in total over the rollout (per value of ' +
            'peerAffinityLabel; a failed pull gives its turn back); the others wait for a peer that holds it',
        ),
      peerAffinityLabel: labelKeySchema
        .nullable()
        .default(null)
        .describe(
          "a host label such as `rack`: peers with the fetching host's value are preferred, and registry " +
            'turns are counted per value (the registry read once per rack); null: the fleet is one group',
        ),
    })
    .prefault({})
    .describe('what a rollout that does not say otherwise uses when hosts serve each other images (peers.serve)'),
  log: z
    .strictObject({
      level: z
        .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])
        .default('info')
        .describe('the least severe level logged'),
    })
    .prefault({})
    .describe("the coordinator's log"),
})

export type CoordinatorConfig = z.infer<typeof coordinatorConfigSchema>

// Kept in errors.ts so that the CLI can catch it without loading the schema (zod, yaml, node-cron).
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

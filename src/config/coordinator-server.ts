// The coordinator's own config: its listener and tokens, TLS, where the fleet state lives (SQLite or
// PostgreSQL), limits and timeouts, the rollouts' defaults and its log.
import { z } from 'zod'
import { labelKeySchema } from '../labels.js'
import { hostPort, maxFrameBytes, seconds } from './fields.js'
import { logSection } from './log.js'

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
  log: logSection.describe("the coordinator's log"),
})

export type CoordinatorConfig = z.infer<typeof coordinatorConfigSchema>

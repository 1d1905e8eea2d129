// The one configuration schema: every key of the agent's config, its default and its bounds, section
// by section in the order the reference lists them. Each section is its own module under config/; the
// top-level keys are here. The coordinator's own schema is config/coordinator-server.ts.
import { hostname } from 'node:os'
import { z } from 'zod'
import { labelsSchema } from './labels.js'
import { ConfigError } from './errors.js'
import { coordinatorSection } from './config/coordinator-link.js'
import { coordinatorConfigSchema, type CoordinatorConfig } from './config/coordinator-server.js'
import { diskSection } from './config/disk.js'
import { dockerSection } from './config/docker.js'
import { hostPort } from './config/fields.js'
import { gpuSection } from './config/gpu.js'
import { httpSection } from './config/http.js'
import { kubernetesSection } from './config/kubernetes.js'
import {
  DEFAULT_AGENT_CONFIG_FILE,
  DEFAULT_COORDINATOR_CONFIG_FILE,
  loadConfigFile,
  resolveConfigFile,
} from './config/load.js'
import { logSection } from './config/log.js'
import { peersSection } from './config/peers.js'
import { prewarmSection } from './config/prewarm.js'
import { pruneSection } from './config/prune.js'
import { runtimeSection } from './config/runtime.js'
import { scheduleSection } from './config/schedule.js'

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
    http: httpSection,
    docker: dockerSection,
    runtime: runtimeSection,
    gpu: gpuSection,
    disk: diskSection,
    schedule: scheduleSection,
    prune: pruneSection,
    prewarm: prewarmSection,
    peers: peersSection,
    coordinator: coordinatorSection,
    kubernetes: kubernetesSection,
    log: logSection.describe("the agent's log"),
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

export function loadAgentConfig(flag?: string): AgentConfig {
  return loadConfigFile(agentConfigSchema, resolveConfigFile(flag, DEFAULT_AGENT_CONFIG_FILE))
}

export function loadCoordinatorConfig(flag?: string): CoordinatorConfig {
  return loadConfigFile(coordinatorConfigSchema, resolveConfigFile(flag, DEFAULT_COORDINATOR_CONFIG_FILE))
}

// Kept in errors.ts so that the CLI can catch it without loading the schema (zod, yaml, node-cron).
export { ConfigError }
export { coordinatorConfigSchema, type CoordinatorConfig }
export { coordinatorUrls } from './config/coordinator-link.js'
export { DEFAULT_MAX_FRAME_BYTES } from './config/fields.js'
export { DEFAULT_AGENT_CONFIG_FILE, DEFAULT_COORDINATOR_CONFIG_FILE, loadConfigFile, resolveConfigFile }
export { parseConfig } from './config/load.js'
export { inspectConcurrency } from './config/prewarm.js'
export type { PruneSchedule } from './config/prune-schedule.js'
export { readTokenFile, tokenFileExposure } from './config/token-file.js'

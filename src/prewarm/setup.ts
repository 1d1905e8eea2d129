// Builds the prewarm's parts from the configuration: the Docker client for pulls, the registry
// client with dockerd's own trust settings, and the credentials. Shared by the agent and the CLI.
import type { Logger } from 'pino'
import type { ActionRegistry } from '../agent/actions.js'
import type { AgentConfig } from '../config.js'
import type { EventBus } from '../agent/events.js'
import { createDockerClient } from '../runtime/docker-client.js'
import type { GpuFacts, ImageCompat } from '../agent/snapshot.js'
import { CredentialStore } from '../registry/credentials.js'
import { createRegistryClient } from '../registry/from-config.js'
import type { PrewarmDeps } from './executor.js'
import { readPrewarmFacts } from './facts.js'
import type { JobRunner } from '../agent/job-runner.js'
import type { Clock } from '../agent/clock.js'

/** the compat evaluator: can a host with these GPU facts run an image with this CUDA env */
export type CompatEvaluator = (cudaEnv: Record<string, string> | null, gpu: GpuFacts) => ImageCompat

export function buildPrewarmDeps(args: {
  config: AgentConfig
  log: Logger
  bus: EventBus
  runner: JobRunner
  actions?: ActionRegistry
  gpu: () => Promise<GpuFacts>
  now?: Clock
  evaluate: CompatEvaluator
}): PrewarmDeps & { close(): Promise<void> } {
  const { config } = args
  const docker = createDockerClient(config)
  // A pull streams for as long as an attempt may last; the API client's own timeout must not cut it.
  const pullDocker = createDockerClient({ docker: { ...config.docker, timeoutSeconds: config.prewarm.attemptTimeoutSeconds + 30 } })
  const credentials = new CredentialStore(config.prewarm.credentialsFile)
  const source = createRegistryClient(config, docker, credentials)
  return {
    docker, pullDocker, source, credentials, config,
    bus: args.bus, runner: args.runner, actions: args.actions, log: args.log, now: args.now,
    facts: () => readPrewarmFacts(docker, config.disk.path),
    compat: async () => {
      const gpu = await args.gpu()
      return (cudaEnv) => args.evaluate(cudaEnv, gpu)
    },
    close: () => source.close(),
  }
}

// Builds the prewarm's parts from the configuration and the runtime: the registry client with the
// runtime's own trust settings, and the credentials. Shared by the agent and the CLI.
import type { Logger } from 'pino'
import type { ActionRegistry } from '../core/actions.js'
import type { AgentConfig } from '../config.js'
import type { EventBus } from '../core/events.js'
import type { ContainerRuntime } from '../runtime/runtime.js'
import type { PullsInFlight } from '../core/pulls-in-flight.js'
import type { GpuFacts, ImageCompat } from '../core/snapshot.js'
import { CredentialStore } from '../registry/credentials.js'
import { createRegistryClient } from '../registry/from-config.js'
import type { PrewarmDeps } from './deps.js'
import { readPrewarmFacts } from './facts.js'
import type { JobRunner } from '../core/job-runner.js'
import type { Clock } from '../core/clock.js'

/** the compat evaluator: can a host with these GPU facts run an image with this CUDA env */
export type CompatEvaluator = (cudaEnv: Record<string, string> | null, gpu: GpuFacts) => ImageCompat

export function buildPrewarmDeps(args: {
  config: AgentConfig
  log: Logger
  bus: EventBus
  runner: JobRunner
  runtime: ContainerRuntime
  pulls: PullsInFlight
  actions?: ActionRegistry
  gpu: () => Promise<GpuFacts>
  now?: Clock
  evaluate: CompatEvaluator
}): PrewarmDeps & { close(): Promise<void> } {
  const { config } = args
  const { runtime, pulls } = args
  const credentials = new CredentialStore(config.prewarm.credentialsFile)
  const source = createRegistryClient(config, runtime, credentials)
  return {
    runtime,
    pulls,
    source,
    credentials,
    config,
    bus: args.bus,
    runner: args.runner,
    actions: args.actions,
    log: args.log,
    now: args.now,
    peerCaFile: config.peers.tls.caFile,
    peerAllowLoopback: config.peers.allowLoopback,
    facts: () => readPrewarmFacts(runtime, config.disk.path),
    compat: async () => {
      const gpu = await args.gpu()
      return (cudaEnv) => args.evaluate(cudaEnv, gpu)
    },
    close: () => source.close(),
  }
}

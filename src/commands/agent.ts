// gpuhost agent: the daemon, in the foreground until SIGTERM/SIGINT.
import { Agent } from '../agent/agent.js'
import type { Feature } from '../core/feature.js'
import { loadAgentConfig, type AgentConfig } from '../config.js'
import { inventoryFeature } from '../inventory/feature.js'
import { createLogger } from '../log.js'
import type { GlobalOptions } from './options.js'
import { printConfig, runUntilSignal } from './daemon.js'
import { checkImageCompat } from '../compat/check.js'
import { compatFeature } from '../compat/feature.js'
import { gpuFeature } from '../gpu/feature.js'
import { prewarmFeature } from '../prewarm/feature.js'
import { createPruneFeature } from '../prune/feature.js'
import { createRegistryClient } from '../registry/from-config.js'

/** `check` of images not on the host asks their registry as prewarm does */
const compatWithRegistry: Feature = (ctx) => compatFeature(createRegistryClient(ctx.config, ctx.runtime))(ctx)

/**
 * The agent's features, in start order. Each adds its routes and returns its components and collectors.
 * The coordinator link comes first: it subscribes to the bus as it is built, so it sees every event. It
 * is loaded only with a coordinator configured: its WebSocket client and its SQLite outbox cost about
 * 20 MiB that an agent on its own does not need. Serving peers and the NFD features file are off by
 * default and add nothing when off: their code loads only when they are configured on.
 */
const features = async (config: AgentConfig): Promise<Feature[]> => [
  ...(config.coordinator.url ? [(await import('../link/link.js')).coordinatorLinkFeature] : []),
  inventoryFeature,
  gpuFeature,
  compatWithRegistry,
  createPruneFeature(),
  prewarmFeature(checkImageCompat),
  ...(config.peers.serve ? [(await import('../peers/feature.js')).peersFeature] : []),
  ...(config.kubernetes.nfdFeaturesFile !== null ? [(await import('../kubernetes/nfd-feature.js')).nfdFeature] : []),
]

export async function run(opts: { printConfig?: boolean }, globals: GlobalOptions): Promise<number> {
  const config = loadAgentConfig(globals.config)
  if (opts.printConfig) return printConfig(config, globals.json)
  const log = createLogger({ level: config.log.level })
  const agent = new Agent(config, log, await features(config))
  return runUntilSignal(agent, log, 'agent', { hostId: config.hostId, listen: config.listen })
}

// The agent's CUDA compatibility feature: verdicts on every local image in the snapshot, and the
// `check` action (HTTP, coordinator, CLI) that answers with GPU facts and per-image verdicts.
import type { AgentContext, Feature } from '../agent/agent.js'
import { createDockerClient } from '../runtime/docker-client.js'
import type { RemoteImageSource } from '../registry/types.js'
import { CompatAnnotator } from './annotate.js'
import { buildCheckReport } from './check-report.js'

/** `remote` reads images that are not on the host from their registry; without it they are reported as such. */
export function compatFeature(remote: RemoteImageSource | null = null): Feature {
  return (ctx: AgentContext) => {
    const { store, bus, config, actions, now } = ctx
    actions.register('check', async (args) => {
      const refs = Array.isArray(args.images) ? args.images.filter((r): r is string => typeof r === 'string') : []
      return buildCheckReport({ gpu: store.get().gpu, docker: createDockerClient(config), refs, remote })
    })
    return [new CompatAnnotator(store, bus, now)]
  }
}

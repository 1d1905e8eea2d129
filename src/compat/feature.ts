// The agent's CUDA compatibility feature: verdicts on every local image in the snapshot, and the
// `check` action (HTTP, coordinator, CLI) that answers with GPU facts and per-image verdicts.
import { z } from 'zod'
import type { AgentContext, Feature } from '../agent/agent.js'
import { InvalidRequestError } from '../errors.js'
import { describeZodIssues } from '../validation.js'
import type { RemoteImageSource } from '../registry/types.js'
import { CompatAnnotator } from './annotate.js'
import { buildCheckReport } from './check-report.js'

/** the args of the "check" action: the images to judge; none: every local image */
export const checkArgsSchema = z.object({ images: z.array(z.string().min(1)).max(500).optional() })
export type CheckArgs = z.infer<typeof checkArgsSchema>

/** `remote` reads images that are not on the host from their registry; without it they are reported as such. */
export function compatFeature(remote: RemoteImageSource | null = null): Feature {
  return (ctx: AgentContext) => {
    const { store, bus, runtime, actions, now } = ctx
    actions.register('check', async (args) => {
      const parsed = checkArgsSchema.safeParse(args ?? {})
      if (!parsed.success) throw new InvalidRequestError(`bad check request: ${describeZodIssues(parsed.error.issues)}`)
      const refs = parsed.data.images ?? []
      return buildCheckReport({ gpu: store.get().gpu, runtime, refs, remote })
    })
    return { components: [new CompatAnnotator(store, bus, now)] }
  }
}

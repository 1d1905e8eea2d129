// The agent's CUDA compatibility feature: verdicts on every local image in the snapshot, the NVIDIA
// runtime facts (re-read on gpu.intervalSeconds: a toolkit upgrade or a changed config.toml shows
// up without a restart), and the `check` action (HTTP, coordinator, CLI) that answers with GPU
// facts and per-image verdicts.
import { z } from 'zod'
import type { AgentContext, Feature } from '../core/feature.js'
import { CollectorLoop, type Collector } from '../core/collector.js'
import type { Component } from '../core/lifecycle.js'
import type { SnapshotStore } from '../core/snapshot.js'
import { InvalidRequestError } from '../errors.js'
import { describeZodIssues } from '../validation.js'
import type { RemoteImageSource } from '../registry/types.js'
import { CompatAnnotator } from './annotate.js'
import { buildCheckReport } from './check-report.js'
import { DEFAULT_RUNTIME_PATHS, readNvidiaRuntime, type NvidiaRuntimePaths } from './nvidia-runtime-reader.js'

export const NVIDIA_RUNTIME_COLLECTOR = 'nvidia-runtime'

/** the args of the "check" action: the images to judge; none: every local image */
export const checkArgsSchema = z.object({ images: z.array(z.string().min(1)).max(500).optional() })
export type CheckArgs = z.infer<typeof checkArgsSchema>

/** `remote` reads images that are not on the host from their registry; without it they are reported as such. */
export function compatFeature(
  remote: RemoteImageSource | null = null,
  runtimePaths: NvidiaRuntimePaths = DEFAULT_RUNTIME_PATHS,
): Feature {
  return (ctx: AgentContext) => {
    const { store, bus, runtime, actions, now, log, config } = ctx
    actions.register('check', async (args) => {
      const parsed = checkArgsSchema.safeParse(args ?? {})
      if (!parsed.success) throw new InvalidRequestError(`bad check request: ${describeZodIssues(parsed.error.issues)}`)
      const refs = parsed.data.images ?? []
      const nvidiaRuntime = store.get().nvidiaRuntime ?? null
      return buildCheckReport({ gpu: store.get().gpu, runtime, refs, remote, nvidiaRuntime })
    })
    const read = () => readNvidiaRuntime(runtime, runtimePaths)
    const loop = new CollectorLoop(
      new NvidiaRuntimeCollector(store, read),
      config.gpu.intervalSeconds * 1000,
      store,
      log,
      now,
    )
    const runtimeComponent: Component = {
      name: 'nvidia-runtime-collector',
      start: () => loop.start(),
      stop: () => loop.stop(),
    }
    return { components: [runtimeComponent, new CompatAnnotator(store, bus, now)] }
  }
}

class NvidiaRuntimeCollector implements Collector {
  readonly name = NVIDIA_RUNTIME_COLLECTOR

  constructor(
    private readonly store: SnapshotStore,
    private readonly read: () => ReturnType<typeof readNvidiaRuntime>,
  ) {}

  async collect(): Promise<void> {
    this.store.set('nvidiaRuntime', await this.read())
  }
}

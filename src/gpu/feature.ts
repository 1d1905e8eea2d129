// The agent's GPU feature: the gpu collector on gpu.intervalSeconds. Stopping kills an nvidia-smi
// in flight first, so a hung GPU never holds up a shutdown.
import type { AgentContext, Feature } from '../agent/agent.js'
import type { Component } from '../agent/lifecycle.js'
import { CollectorLoop } from '../agent/collector.js'
import { GpuCollector, NvidiaSmiReader } from './collector.js'
import { GpuHealthWatcher } from './health-watch.js'

export const GPU_COLLECTOR = 'gpu'

export const gpuFeature: Feature = (ctx: AgentContext) => {
  const { config, store, log } = ctx
  const reader = new NvidiaSmiReader({ nvidiaSmi: config.gpu.nvidiaSmi, timeoutMs: config.gpu.timeoutSeconds * 1000 })
  const intervalMs = config.gpu.intervalSeconds * 1000
  const loop = new CollectorLoop(new GpuCollector(reader, store), intervalMs, store, log, ctx.now)
  const component: Component = {
    name: 'gpu-collector',
    start: () => loop.start(),
    stop: async () => {
      reader.stop()
      await loop.stop()
    },
  }
  return { components: [component, new GpuHealthWatcher(store, ctx.bus)], collectors: [GPU_COLLECTOR] }
}

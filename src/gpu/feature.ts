// The agent's GPU feature: the gpu collector on gpu.intervalSeconds. Stopping kills an nvidia-smi
// in flight first, so a hung GPU never holds up a shutdown.
import type { AgentContext, Feature } from '../core/feature.js'
import type { Component } from '../core/lifecycle.js'
import { CollectorLoop } from '../core/collector.js'
import { GpuCollector, NvidiaSmiReader } from './collector.js'
import { GpuHealthWatcher } from './health-watch.js'

export const GPU_COLLECTOR = 'gpu'

export const gpuFeature: Feature = (ctx: AgentContext) => {
  const { config, store, log } = ctx
  const reader = new NvidiaSmiReader({ nvidiaSmi: config.gpu.nvidiaSmi, timeoutMs: config.gpu.timeoutSeconds * 1000 })
  const intervalMs = config.gpu.intervalSeconds * 1000
  // once per run: the fix is in the unit or the manifest, not something a later run changes
  let toldHidden = false
  const collector = new GpuCollector(reader, store, undefined, config.gpu.containerMemory ? '/proc' : null, (n) => {
    if (toldHidden) return
    toldHidden = true
    log.warn(
      { processes: n },
      'GPU memory per container unavailable: none of the processes nvidia-smi lists is visible in /proc. ' +
        'Under systemd set ProtectProc=default (the shipped unit does); in a container share the host PID ' +
        'namespace (docker run --pid host, Kubernetes hostPID: true); or set gpu.containerMemory: false',
    )
  })
  const loop = new CollectorLoop(collector, intervalMs, store, log, ctx.now)
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

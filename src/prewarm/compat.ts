// The host's GPU facts and the compat evaluator, for a prewarm run outside the agent (the CLI).
import { checkImageCompat } from '../compat/check.js'
import type { AgentConfig } from '../config.js'
import { readGpuFacts } from '../gpu/collector.js'
import type { GpuFacts } from '../core/snapshot.js'
import type { CompatEvaluator } from './setup.js'

export function readHostGpu(config: AgentConfig): Promise<GpuFacts> {
  return readGpuFacts({ nvidiaSmi: config.gpu.nvidiaSmi, timeoutMs: config.gpu.timeoutSeconds * 1000 })
}

export const evaluateCompat: CompatEvaluator = checkImageCompat

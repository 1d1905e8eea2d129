// The host's GPU facts and the compat evaluator, for a prewarm run outside the agent (the CLI).
import type { AgentConfig } from '../config.js'
import type { GpuFacts } from '../host/snapshot.js'
import type { CompatEvaluator } from './prewarm-setup.js'

export async function readHostGpu(_config: AgentConfig): Promise<GpuFacts> {
  return { available: false, reason: 'not read', gpus: [] }
}

export const evaluateCompat: CompatEvaluator = () => ({ compatible: null, reason: 'not evaluated', requirement: null })

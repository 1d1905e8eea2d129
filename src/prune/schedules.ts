// Pure: the rules one prune run follows. A run from a named schedule (prune.schedules) takes that
// schedule's keys in place of the top-level ones; every other run follows prune's own keys.
import type { AgentConfig, PruneSchedule } from '../config.js'
import { InvalidRequestError } from '../errors.js'

export interface RunRules {
  policy: AgentConfig['prune']
  /** build cache (with prune.buildCache) and dangling volumes (with prune.volumes.dangling), whatever the usage */
  deep: boolean
  schedule: string | null
}

const OVERRIDABLE = ['maxUnusedSeconds', 'include', 'exclude', 'thresholdScope', 'maxImageBytes'] as const

export function rulesFor(prune: AgentConfig['prune'], schedule?: string | null): RunRules {
  if (schedule === undefined || schedule === null) return { policy: prune, deep: false, schedule: null }
  const found = prune.schedules.find((s) => s.name === schedule)
  if (!found) {
    const known = prune.schedules.map((s) => s.name).join(', ') || 'none configured'
    throw new InvalidRequestError(`no prune schedule named ${JSON.stringify(schedule)} (prune.schedules: ${known})`)
  }
  return { policy: withOverrides(prune, found), deep: found.deep, schedule: found.name }
}

function withOverrides(prune: AgentConfig['prune'], s: PruneSchedule): AgentConfig['prune'] {
  const policy = { ...prune }
  for (const key of OVERRIDABLE) {
    if (s[key] !== undefined) Object.assign(policy, { [key]: s[key] })
  }
  return policy
}

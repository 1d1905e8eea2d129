// The compat feature's action, added to the agent's ActionMap.
import type { CheckArgs } from './feature.js'
import type { CheckReport } from './check-report.js'

declare module '../core/actions.js' {
  interface ActionMap {
    check: { args: CheckArgs; result: CheckReport }
  }
}

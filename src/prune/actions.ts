// The prune feature's action, added to the agent's ActionMap.
import type { PruneArgs } from './request.js'
import type { PruneReport } from './report.js'

declare module '../core/actions.js' {
  interface ActionMap {
    prune: { args: PruneArgs; result: PruneReport & { joined: boolean } }
  }
}

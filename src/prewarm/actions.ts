// The prewarm feature's actions, added to the agent's ActionMap.
import type { PrewarmArgs, ReleaseArgs } from './request.js'
import type { PrewarmReport } from './result.js'

declare module '../core/actions.js' {
  interface ActionMap {
    prewarm: { args: PrewarmArgs; result: PrewarmReport }
    /** takes held images out of the wanted set */
    release: { args: ReleaseArgs; result: { released: string[] } }
  }
}

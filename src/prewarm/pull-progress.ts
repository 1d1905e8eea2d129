// A pull's progress, told to the terminal on every report and to the events at most once a second
// (a multi-GB pull reports thousands of times).
import type { PullProgress } from '../runtime/runtime.js'
import { millis, type PrewarmDeps } from './deps.js'

export function progressReporter(
  deps: Pick<PrewarmDeps, 'bus' | 'now' | 'onProgress'>,
  ref: string,
  source: string,
): (p: PullProgress) => void {
  const now = millis(deps.now)
  let lastEvent = 0
  return (p) => {
    deps.onProgress?.(ref, { ...p, source })
    const t = now()
    if (t - lastEvent >= 1000) {
      lastEvent = t
      deps.bus.publish('pull.progress', { ref, source, ...p })
    }
  }
}

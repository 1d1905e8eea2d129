// The prewarm an agent runs once when it starts: a host that joins the fleet (or comes back after
// a disk swap) should not wait for the nightly schedule to hold its wanted images. Only the wanted
// images missing here are asked for, each at most as often as its persisted backoff allows, so an
// agent in a restart loop does not pull (or ask the registry) on every start.
import type { Logger } from 'pino'
import type { Component } from '../core/lifecycle.js'
import type { PrewarmReport } from './result.js'
import { backoffDelay } from '../backoff.js'
import { DockerUnreachableError, type PrewarmHostFacts } from './facts.js'
import type { StartBackoff } from './start-backoff.js'
import { missingRefs } from './wanted.js'

export interface PrewarmOnStartDeps {
  wanted: () => string[]
  facts: () => Promise<Pick<PrewarmHostFacts, 'local'>>
  backoff: StartBackoff
  run: (images: string[]) => Promise<PrewarmReport>
  log: Logger
}

/** One look and (when something is missing and due) one prewarm; resolves with what it did. */
export async function prewarmOnStart(
  deps: PrewarmOnStartDeps,
): Promise<{ missing: string[]; waiting: string[]; report: PrewarmReport | null }> {
  const wanted = deps.wanted()
  if (wanted.length === 0) return { missing: [], waiting: [], report: null }
  const { local } = await deps.facts()
  const missing = missingRefs(wanted, local)
  // Present now (pulled by hand, or by the last start): nothing to back off from.
  deps.backoff.clear(wanted.filter((r) => !missing.includes(r)))
  const waiting = missing.filter((r) => deps.backoff.waitUntil(r) !== null)
  for (const ref of waiting)
    deps.log.info(
      { ref, attempts: deps.backoff.get(ref)?.attempts, notBefore: deps.backoff.waitUntil(ref) },
      'wanted image missing; earlier starts tried it: not tried again on this start before its backoff ends',
    )
  const due = missing.filter((r) => !waiting.includes(r))
  if (due.length === 0) return { missing, waiting, report: null }
  deps.log.info({ images: due }, 'wanted images missing at start: prewarming them now')
  deps.backoff.begin(due)
  const report = await deps.run(due)
  deps.backoff.clear(report.results.filter((r) => r.status === 'pulled' || r.status === 'present').map((r) => r.ref))
  return { missing, waiting, report }
}

/**
 * The component: looks in the background, so a slow registry does not hold the agent's start. A
 * runtime not reachable yet (the agent started before dockerd) is asked again with backoff.
 */
export function prewarmOnStartComponent(deps: PrewarmOnStartDeps): Component {
  let stopped = false
  let timer: NodeJS.Timeout | null = null
  const attempt = async (n: number): Promise<void> => {
    try {
      await prewarmOnStart(deps)
    } catch (err) {
      if (stopped) return
      if (!(err instanceof DockerUnreachableError)) {
        deps.log.error({ err: (err as Error).message }, 'prewarm at start failed')
        return
      }
      const delay = backoffDelay(n, { baseMs: 1000, maxMs: 60_000 })
      deps.log.warn({ err: (err as Error).message, retryInMs: delay }, 'prewarm at start waits for the runtime')
      timer = setTimeout(() => void attempt(n + 1), delay)
      timer.unref()
    }
  }
  return {
    name: 'prewarm-on-start',
    async start() {
      stopped = false
      void attempt(0)
    },
    async stop() {
      // A pull in flight is left to the runtime, as the schedule's is; only a pending retry is dropped.
      stopped = true
      if (timer) clearTimeout(timer)
      timer = null
    },
  }
}

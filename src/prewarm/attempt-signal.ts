// The limits of one pull attempt: cut when it stalls, or when it has lasted too long in all.
import type { AgentConfig } from '../config.js'

/**
 * The abort signal of one pull attempt: cut when the runtime has reported no progress for
 * `stallSeconds` (a registry that stopped sending: nothing would ever arrive), and, when
 * `attemptTimeoutSeconds` is set, after that long in all. Any progress the runtime reports counts,
 * a byte downloaded or a layer being extracted, so the long extraction of a large layer is not a
 * stall; a large image on a slow link that keeps sending is never cut for its size.
 */
export function attemptSignal(opts: Pick<AgentConfig['prewarm'], 'stallSeconds' | 'attemptTimeoutSeconds'>): {
  signal: AbortSignal
  progressed(): void
  /** the transfer is over; what follows (the engine registering layers) is bounded by the attempt timeout only */
  transferred(): void
  why(): string
  done(): void
} {
  const controller = new AbortController()
  let reason = ''
  const cut = (why: string) => {
    if (controller.signal.aborted) return
    reason = why
    controller.abort(new Error(why))
  }
  const stallMs = opts.stallSeconds * 1000
  let stall = setTimeout(() => cut(`stalled: no progress for ${opts.stallSeconds} s`), stallMs)
  const outer =
    opts.attemptTimeoutSeconds === null
      ? null
      : setTimeout(
          () => cut(`attempt timed out after ${opts.attemptTimeoutSeconds} s`),
          opts.attemptTimeoutSeconds * 1000,
        )
  return {
    signal: controller.signal,
    progressed: () => {
      if (controller.signal.aborted) return
      // refresh() restarts the same timer: no allocation per progress line of a multi-GB pull
      stall = stall.refresh()
    },
    transferred: () => clearTimeout(stall),
    why: () => reason || 'aborted',
    done: () => {
      clearTimeout(stall)
      if (outer) clearTimeout(outer)
    },
  }
}

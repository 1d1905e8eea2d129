// What /readyz and `gpuhost status` say about the parts of the agent. Ready means the agent can do
// its work on this host: its first snapshot is taken and its container runtime answers (pruning,
// prewarming and the inventory all go through it). Any other part that fails (the GPU collector on
// a host without nvidia-smi, a component retrying its start) is listed but leaves the agent ready:
// what it serves without that part is still right. Pure.
import type { Reply } from '../http/server.js'
import type { FailingComponent } from '../core/lifecycle.js'
import type { HostSnapshot } from '../core/snapshot.js'

/** one part that fails now: a component whose start is retried, or a collector whose last run failed */
export interface FailingPart {
  component: string
  error: string
  /** failed starts, or failed runs in a row */
  attempts: number
  /** a component's next start; absent for a collector, which runs again on its interval */
  retryAt?: string
}

/** the components retrying their start, then each collector whose last run failed */
export function failingParts(snapshot: HostSnapshot, components: FailingComponent[]): FailingPart[] {
  const collectors = Object.entries(snapshot.collectors)
    .filter(([, c]) => !c.success)
    .map(([name, c]) => ({ component: `collector:${name}`, error: c.error ?? 'failed', attempts: c.failures ?? 1 }))
  return [...components, ...collectors]
}

export function readiness(args: { snapshotTaken: boolean; snapshot: HostSnapshot; failing: FailingPart[] }): Reply {
  if (!args.snapshotTaken) return { status: 503, body: { status: 'starting', waitingFor: 'first snapshot' } }
  const failing = args.failing.map(({ component, error }) => ({ component, error }))
  const runtime = args.snapshot.docker
  if (!runtime.reachable) {
    const engine = runtime.kind === 'containerd' ? 'containerd' : 'Docker'
    return {
      status: 503,
      body: {
        status: 'unready',
        reason: `${engine} is unreachable: ${runtime.reason ?? 'unknown reason'}`,
        ...(runtime.hint ? { hint: runtime.hint } : {}),
        failing,
      },
    }
  }
  return { status: 200, body: failing.length > 0 ? { status: 'ready', failing } : { status: 'ready' } }
}

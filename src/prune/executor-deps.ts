// What a prune run is given: the request (trigger, dry or real, target), the parts it works with
// (runtime, disk reading, bus, log, policy), the inputs the inventory knows, and the hooks tests use.
import type { Logger } from 'pino'
import type { Trigger } from '../core/actions.js'
import type { AgentConfig } from '../config.js'
import type { EventBus } from '../core/events.js'
import type { ImageFacts } from '../core/snapshot.js'
import type { DiskReading } from '../inventory/disk.js'
import type { ContainerRuntime } from '../runtime/runtime.js'
import type { PlanItem, PrunePlan } from './plan-types.js'

export interface PruneRequest {
  trigger: Trigger
  dryRun: boolean
  /** free down to this usage instead of prune.lowPercent */
  targetPercent?: number
  /** the named schedule (prune.schedules) whose rules deps.policy carries; absent: prune's own */
  schedule?: string | null
  /** also prune the build cache (prune.buildCache) and dangling volumes (prune.volumes), whatever the usage */
  deep?: boolean
}

export interface PruneDeps {
  runtime: ContainerRuntime
  /** a fresh reading of the filesystem at `path` */
  measure: (path: string) => Promise<DiskReading>
  bus: EventBus
  log: Logger
  now: () => Date
  policy: AgentConfig['prune']
  /** references a pull in flight is writing; read at planning and again before each removal */
  pullsInFlight: () => Iterable<string>
  /** the prewarm's wanted set, read at planning: those images are kept ("wanted by prewarm") */
  wanted?: () => Iterable<string>
  /**
   * Ask the runtime for shared sizes when its image list left them unknown (-1; Docker before API
   * 1.42): one disk accounting per run, so the plan need not treat every image as fully shared.
   */
  sharedSizes?: boolean
  /** runs a real (not dry) prune, from planning to the last removal, as the only one on the host */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>
  /** true once the agent is stopping: the run ends after the image being removed */
  stopRequested?: () => boolean
}

export interface PruneInputs {
  /** the images as the inventory knows them (containers, last used, first seen); null: not yet known */
  images: ImageFacts[] | null
  /** the filesystem that holds Docker's data */
  diskPath: string | null
}

export interface PruneHooks {
  /** runs between planning and removal (tests use it to make the world change under the plan) */
  beforeExecute?: (plan: PrunePlan) => Promise<void> | void
  /** runs inside the removal of an image with references in several repositories, before its last one */
  beforeLastReference?: (item: PlanItem) => Promise<void> | void
}

// The payload of every agent event, as zod schemas: the agent's EventMap is inferred from them, so
// what the bus carries, what metrics and status read, and what the coordinator receives in an
// `event` message's `data` are one definition. The wire stays lenient (`data` is any object) so a
// newer agent's events still reach an older coordinator; these schemas say what this agent sends.
import { z } from 'zod'

/** what started a job: every way into an action */
export const TRIGGERS = ['watcher', 'schedule', 'http', 'alertmanager', 'coordinator', 'cli', 'start'] as const
export const triggerSchema = z.enum(TRIGGERS)

export const PRUNE_RESULTS = ['ok', 'nothing_to_do', 'not_enough', 'error'] as const
export const PRUNE_RULES = ['threshold', 'max_unused', 'max_image_bytes'] as const
export const PULL_STATUSES = ['pulled', 'present', 'skipped', 'failed'] as const

/** one image's prewarm outcome */
export const pullResultSchema = z.object({
  ref: z.string(),
  status: z.enum(PULL_STATUSES),
  reason: z.string(),
  /** the registry or mirror the image came from (or would come from); null when none was reached */
  source: z.string().nullable(),
  durationSeconds: z.number(),
  warnings: z.array(z.string()).optional(),
  /** why a skipped image was skipped: the driver cannot run it, or it does not fit on the disk */
  skip: z.enum(['incompatible', 'disk']).optional(),
  /** bytes of the image's compressed layers this pull fetched or found present; 0 when nothing was pulled */
  bytesPulled: z.number().optional(),
  /** where the bytes came from: the image's registry, a mirror of it, or another host of the fleet */
  sourceKind: z.enum(['registry', 'mirror', 'peer']).optional(),
  /** the peers named for the image that failed (refused, cut, other bytes), whatever the outcome */
  peerFailures: z
    .array(z.object({ host: z.string(), reason: z.string(), breach: z.literal(true).optional() }))
    .optional(),
})

const pruneFinished = z.object({
  trigger: triggerSchema,
  dryRun: z.boolean(),
  schedule: z.string().optional(),
  result: z.enum(PRUNE_RESULTS),
  error: z.string().optional(),
  targetPercent: z.number(),
  needBytes: z.number(),
  freedBytes: z.number(),
  enough: z.boolean(),
  plannedCount: z.number(),
  removedCount: z.number(),
  skippedCount: z.number(),
  failedCount: z.number(),
  keptCount: z.number(),
  usedPercentBefore: z.number().nullable(),
  usedPercentAfter: z.number().nullable(),
  /** by the runtime's own sizes; absent from agents before this field existed */
  freedBytesByKind: z
    .object({ containers: z.number(), images: z.number(), buildCache: z.number(), volumes: z.number() })
    .optional(),
  /** after a run that could not free enough: the kinds that hold the space, largest first */
  heldBy: z.array(z.object({ kind: z.string(), bytes: z.number() })).optional(),
  durationSeconds: z.number(),
})

const prewarmFinished = z.discriminatedUnion('result', [
  z.object({
    trigger: triggerSchema,
    dryRun: z.boolean(),
    result: z.literal('error'),
    error: z.string(),
    durationSeconds: z.number(),
  }),
  z.object({
    trigger: triggerSchema,
    dryRun: z.boolean(),
    result: z.enum(['ok', 'failed']),
    pulled: z.number(),
    present: z.number(),
    skipped: z.number(),
    failed: z.number(),
    durationSeconds: z.number(),
    results: z.array(pullResultSchema),
  }),
])

export const eventPayloadSchemas = {
  'agent.started': z.object({ version: z.string() }),
  'agent.stopping': z.object({}),
  'prune.started': z.object({
    trigger: triggerSchema,
    dryRun: z.boolean(),
    targetPercent: z.number(),
    /** the named schedule (prune.schedules) whose rules the run follows */
    schedule: z.string().optional(),
  }),
  'prune.image': z.object({
    outcome: z.enum(['removed', 'skipped', 'failed']),
    id: z.string(),
    tags: z.array(z.string()),
    sizeBytes: z.number(),
    reason: z.string(),
    /** the rule that planned it: threshold (LRU to the target), max_unused (age) or max_image_bytes (budget) */
    rule: z.enum(PRUNE_RULES).optional(),
    trigger: triggerSchema,
    schedule: z.string().optional(),
    dryRun: z.boolean(),
  }),
  'prune.finished': pruneFinished,
  'prewarm.started': z.object({ trigger: triggerSchema, dryRun: z.boolean(), images: z.array(z.string()) }),
  'prewarm.finished': prewarmFinished,
  'pull.progress': z.object({ ref: z.string(), source: z.string(), bytesDone: z.number(), bytesTotal: z.number() }),
  'pull.finished': pullResultSchema,
  'pull.failed': pullResultSchema,
  'disk.threshold': z.object({
    state: z.enum(['above', 'below']),
    usedPercent: z.number(),
    highPercent: z.number(),
    mountpoint: z.string(),
  }),
  /** a container's log grew past disk.logWarnBytes (once, until it is back under); gpuhost never truncates it */
  'disk.log_large': z.object({
    containerId: z.string(),
    name: z.string(),
    state: z.string(),
    logBytes: z.number(),
    logWarnBytes: z.number(),
    advice: z.string(),
  }),
  'compat.changed': z.object({
    id: z.string(),
    refs: z.array(z.string()),
    before: z.boolean(),
    compatible: z.boolean().nullable(),
    reason: z.string(),
    requirement: z.string().nullable(),
    driverVersion: z.string().nullable(),
    cudaVersion: z.string().nullable(),
  }),
  /** the host's GPU health changed (src/gpu/health.ts); published once per change */
  'gpu.health': z.object({
    state: z.enum(['ok', 'degraded', 'failed']),
    /** host-wide: driver_library_mismatch, gpus_missing */
    reasons: z.array(z.string()),
    gpus: z.array(
      z.object({
        index: z.number(),
        uuid: z.string(),
        state: z.enum(['ok', 'degraded', 'failed']),
        reasons: z.array(z.string()),
      }),
    ),
    advice: z.string().optional(),
  }),
  'collector.failed': z.object({ collector: z.string(), error: z.string() }),
  'collector.recovered': z.object({ collector: z.string(), failures: z.number() }),
  /** a component whose start failed; it is retried after `retryInSeconds` */
  'component.failed': z.object({
    component: z.string(),
    error: z.string(),
    attempt: z.number(),
    retryInSeconds: z.number(),
  }),
  /** a component that started after failing to */
  'component.started': z.object({ component: z.string(), attempts: z.number() }),
  /** state in stateDir could not be written (first failure of a streak); it is kept in memory and retried */
  'state.write_failed': z.object({ store: z.enum(['outbox', 'usage']), error: z.string(), noSpace: z.boolean() }),
  /** the store can be written again */
  'state.write_recovered': z.object({ store: z.enum(['outbox', 'usage']) }),
} as const

export type EventType = keyof typeof eventPayloadSchemas
/** event type → the payload it carries */
export type EventMap = { [K in EventType]: z.infer<(typeof eventPayloadSchemas)[K]> }

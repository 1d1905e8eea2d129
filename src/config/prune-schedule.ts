// One named prune schedule (prune.schedules[]): when it fires, and the rules its runs use in place of
// prune's own.
import { z } from 'zod'
import { cronOrNull } from './fields.js'

export const pruneScheduleSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'lower-case letters, digits, ".", "_" and "-", at most 63')
      .describe(
        "the schedule's name, unique among prune.schedules: `gpuhost prune --schedule NAME` and " +
          'POST /v1/prune {"schedule": NAME} run its rules now, and its runs\' audit lines name it',
      ),
    cron: cronOrNull.unwrap().describe('when its runs fire: a cron expression in schedule.timezone, as prune.schedule'),
    deep: z
      .boolean()
      .default(false)
      .describe(
        'a deep run: besides its images it also prunes the build cache (with prune.buildCache) and ' +
          'dangling volumes (with prune.volumes.dangling), whatever the usage',
      ),
    maxUnusedSeconds: z
      .number()
      .positive()
      .nullable()
      .optional()
      .describe("replaces prune.maxUnusedSeconds for this schedule's runs; left out: prune's own value"),
    include: z
      .array(z.string().min(1))
      .optional()
      .describe("replaces prune.include for this schedule's runs; left out: prune's own value"),
    exclude: z
      .array(z.string().min(1))
      .optional()
      .describe("replaces prune.exclude for this schedule's runs; left out: prune's own value"),
    thresholdScope: z
      .enum(['all', 'include'])
      .optional()
      .describe("replaces prune.thresholdScope for this schedule's runs; left out: prune's own value"),
    maxImageBytes: z
      .number()
      .int()
      .positive()
      .nullable()
      .optional()
      .describe("replaces prune.maxImageBytes for this schedule's runs; left out: prune's own value"),
  })
  .describe(
    'one named prune schedule: when it fires, a prune runs with these rules in place of the top-level ' +
      "ones (a key left out keeps prune's own value)",
  )

export type PruneSchedule = z.infer<typeof pruneScheduleSchema>

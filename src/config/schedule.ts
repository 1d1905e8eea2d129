// The time zone every cron expression of the agent's config is read in.
import { z } from 'zod'
import { isTimeZone } from '../schedule.js'

export const scheduleSection = z
  .strictObject({
    timezone: z
      .string()
      .max(64)
      // a name, not an offset or anything else Intl might also take
      .refine(
        (v) => /^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(v) && isTimeZone(v),
        'must be an IANA time zone name this Node.js knows, such as Europe/Berlin or UTC',
      )
      .nullable()
      .default(null)
      .describe(
        'the IANA time zone (Europe/Berlin, UTC) every cron expression is read in: prune.schedule, ' +
          "prune.schedules[].cron, prewarm.schedule; null: the host's own zone",
      ),
  })
  .prefault({})
  .describe('how cron expressions are read')

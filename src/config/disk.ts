// Disk usage: which filesystem is measured, how often, and the accounting of where the space is.
import { z } from 'zod'
import { seconds } from './fields.js'

export const diskSection = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe("the path whose filesystem is measured and pruned; null: the runtime's root dir (Docker's)"),
    checkIntervalSeconds: seconds
      .default(60)
      .describe('how often the disk usage is read; the disk watcher prunes when it is at prune.highPercent'),
    breakdownIntervalSeconds: seconds
      .default(3600)
      .describe("the runtime's disk accounting (Docker's /system/df) walks every layer: hourly, and on demand"),
    breakdownTopLogs: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(10)
      .describe('containers with the largest logs listed in /v1/status'),
    logWarnBytes: z
      .number()
      .int()
      .positive()
      .nullable()
      .default(null)
      .describe('a container log larger than this raises a disk.log_large event; null: off'),
  })
  .prefault({})
  .describe('disk usage and where the space is')

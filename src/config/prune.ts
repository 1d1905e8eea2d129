// What a prune removes, when, and what it never touches: images, containers, volumes, the build cache.
import { z } from 'zod'
import { cronOrNull, percent } from './fields.js'
import { pruneScheduleSchema } from './prune-schedule.js'

export const pruneSection = z
  .strictObject({
    highPercent: percent
      .default(85)
      .describe('a prune starts when disk usage is at or above this; 100 switches the disk watcher off'),
    lowPercent: percent.default(80).describe('a prune frees down to this usage; must be below highPercent'),
    minAgeSeconds: z
      .number()
      .min(0)
      .default(3600)
      .describe('an image first seen or pulled more recently than this is never removed'),
    protect: z
      .array(z.string().min(1))
      .default([])
      .describe('globs on repo:tag or repo, or image ids: such an image is never removed'),
    protectLabels: z
      .array(z.string().min(1))
      .default(['gpuhost.keep'])
      .describe('an image with one of these labels (`key` or `key=value`) is never removed'),
    keepPerRepository: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('the newest N images of each repository stay; 0: off'),
    schedule: cronOrNull
      .default('0 3 * * 0')
      .describe(
        'a cron expression in schedule.timezone (5 fields, or 6 with seconds first) for a ' +
          'threshold run with the top-level rules; null: none',
      ),
    buildCache: z
      .boolean()
      .default(false)
      .describe('also prune the build cache: on deep runs, and on other runs when the threshold needs the bytes'),
    maxUnusedSeconds: z
      .number()
      .positive()
      .nullable()
      .default(null)
      .describe(
        'images unused (last used, or first seen when never used) longer than this go on every run, ' +
          'whatever the usage, behind every other guard; null: off',
      ),
    include: z
      .array(z.string().min(1))
      .default([])
      .describe('globs on references: what the age rule may take (empty: every image)'),
    exclude: z.array(z.string().min(1)).default([]).describe('globs on references the age rule never takes'),
    thresholdScope: z
      .enum(['all', 'include'])
      .default('all')
      .describe('"include": the threshold, too, takes only images in that scope'),
    maxImageBytes: z
      .number()
      .int()
      .positive()
      .nullable()
      .default(null)
      .describe("a budget for the images' unique bytes, kept on every run whatever the usage; null: off"),
    volumes: z
      .strictObject({
        dangling: z
          .boolean()
          .default(false)
          .describe('deep runs remove dangling volumes; false: volumes are never removed'),
        named: z
          .boolean()
          .default(false)
          .describe(
            'named volumes too, not only the anonymous ones Docker made for a container ' + '(`docker run -v /path`)',
          ),
        protectLabels: z
          .array(z.string().min(1))
          .default(['gpuhost.keep'])
          .describe('a volume with one of these labels (`key` or `key=value`) is never removed'),
      })
      .prefault({})
      .describe('dangling volumes (no container refers to them), removed only by deep runs (prune.schedules[].deep)'),
    schedules: z
      .array(pruneScheduleSchema)
      .default([])
      .refine((list) => new Set(list.map((s) => s.name)).size === list.length, 'schedule names must be unique')
      .describe('named schedules beside prune.schedule, each with its own rules for its runs'),
    containers: z
      .strictObject({
        exitedOlderThanSeconds: z
          .number()
          .min(0)
          .nullable()
          .default(null)
          .describe('exited containers finished longer ago than this are removed before images are planned; null: off'),
        keepPerImage: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('the newest N exited containers of each image stay whatever their age'),
        protectLabels: z
          .array(z.string().min(1))
          .default(['gpuhost.keep'])
          .describe('a container with one of these labels (`key` or `key=value`) is never removed'),
      })
      .prefault({})
      .describe('stopped containers keep their image (and their writable layer and log) alive'),
  })
  .prefault({})
  .describe('what a prune removes, when, and what it never touches')

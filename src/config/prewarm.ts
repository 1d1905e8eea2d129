// Pulling the wanted images ahead of need: when, from which mirrors, how many at once, how patiently.
import { z } from 'zod'
import { imageRefSchema } from '../image-ref-schema.js'
import { cronOrNull, seconds } from './fields.js'

export const prewarmSection = z
  .strictObject({
    schedule: cronOrNull
      .default('0 2 * * *')
      .describe('a cron expression in schedule.timezone for a prewarm of the wanted set; null: none'),
    images: z
      .array(imageRefSchema)
      .default([])
      .describe(
        'images this host should hold (pin a version or a digest): with the images rollouts hold, the ' +
          'wanted set prewarm pulls and prune never removes',
      ),
    mirrors: z
      .record(z.string(), z.array(z.string().min(1)))
      .default({})
      .describe('mirrors per registry ({ "docker.io": ["mirror.internal"] }): tried in order, then the registry'),
    concurrency: z.number().int().min(1).max(32).default(2).describe('pulls at once'),
    inspectConcurrency: z
      .number()
      .int()
      .min(1)
      .max(32)
      .nullable()
      .default(null)
      .describe('registry look-ups in parallel before planning; null: as many as pulls, at least 2'),
    retries: z
      .number()
      .int()
      .min(0)
      .max(20)
      .default(3)
      .describe('retries of a failed pull, with exponential backoff and jitter'),
    stallSeconds: seconds
      .default(120)
      .describe('a pull attempt is cut when the runtime reports no progress (no byte, no layer extracted) this long'),
    attemptTimeoutSeconds: seconds
      .nullable()
      .default(null)
      .describe('an outer bound on one pull attempt from one source; null: none (a large image on a slow link)'),
    credentialsFile: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('registry credentials: the `auths` of a Docker config.json; null: none'),
    expansionFactor: z
      .number()
      .min(1)
      .max(20)
      .default(2.5)
      .describe('extracted size ÷ compressed download size assumed when checking disk room before a pull'),
  })
  .prefault({})
  .describe('pulling the wanted images ahead of need')

/** registry look-ups a prewarm runs in parallel: prewarm.inspectConcurrency, else max(2, concurrency) */
export function inspectConcurrency(
  prewarm: Pick<z.infer<typeof prewarmSection>, 'concurrency' | 'inspectConcurrency'>,
): number {
  return prewarm.inspectConcurrency ?? Math.max(2, prewarm.concurrency)
}

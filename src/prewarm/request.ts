// The body of POST /v1/prewarm and the args of the "prewarm" action: one schema for every way in.
import { z } from 'zod'
import { InvalidRequestError } from '../errors.js'
import { describeZodIssues } from '../validation.js'
import { imageRefSchema } from '../image-ref-schema.js'

export const prewarmArgsSchema = z.strictObject({
  images: z.array(imageRefSchema).max(500).optional(),
  dryRun: z.boolean().optional(),
  /** hold the images in the wanted set (durably), so prune keeps them until released */
  hold: z.boolean().optional(),
  /** the rollout asking: its id names the hold, so a later rollout or a release can undo it */
  rollout: z.string().min(1).max(200).optional(),
  /** rollouts whose holds this one replaces: released before these images are held */
  replaces: z.array(z.string().min(1).max(200)).max(100).optional(),
  /** hosts to fetch each image from before its mirrors and registry, by reference as in `images` */
  peers: z
    .record(
      z.string().min(1),
      z
        .array(
          z.strictObject({
            host: z.string().min(1).max(253),
            // only a peer listener's export of one image (what the coordinator's grants name): a
            // request may not send the fetch, with its bearer header, to another path of some host
            url: z
              .url({ protocol: /^https?$/ })
              .max(2000)
              .refine(isPeerExportUrl, { message: 'must be http(s)://HOST:PORT/v1/images/sha256:<64 hex>/export' }),
            token: z.string().min(1).max(4000),
          }),
        )
        .max(16),
    )
    .optional(),
})

export type PrewarmArgs = z.infer<typeof prewarmArgsSchema>

/** http(s)://HOST[:PORT]/v1/images/sha256:<hex>/export, without user, query or fragment */
function isPeerExportUrl(raw: string): boolean {
  const u = new URL(raw)
  return (
    !u.username &&
    !u.password &&
    !u.search &&
    !u.hash &&
    !raw.includes('?') &&
    !raw.includes('#') &&
    /^\/v1\/images\/sha256:[0-9a-f]{64}\/export$/.test(u.pathname)
  )
}

/** the args, or an InvalidRequestError naming every bad key */
export function prewarmArgsOrThrow(raw: unknown): PrewarmArgs {
  const parsed = prewarmArgsSchema.safeParse(raw ?? {})
  if (!parsed.success) throw new InvalidRequestError(`bad prewarm request: ${describeZodIssues(parsed.error.issues)}`)
  return parsed.data
}

/** the wanted-set source a rollout's hold is stored under */
export function holdSource(rollout: string | undefined): string {
  return rollout === undefined ? 'coordinator' : `rollout:${rollout}`
}

/** The args of the "release" action: one held image (any source, or one source), or a whole source. */
export const releaseArgsSchema = z
  .strictObject({
    ref: imageRefSchema.optional(),
    rollout: z.string().min(1).max(200).optional(),
  })
  .refine((a) => a.ref !== undefined || a.rollout !== undefined, { message: 'give ref, rollout or both' })

export type ReleaseArgs = z.infer<typeof releaseArgsSchema>

export function releaseArgsOrThrow(raw: unknown): ReleaseArgs {
  const parsed = releaseArgsSchema.safeParse(raw ?? {})
  if (!parsed.success) throw new InvalidRequestError(`bad release request: ${describeZodIssues(parsed.error.issues)}`)
  return parsed.data
}

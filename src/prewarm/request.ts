// The body of POST /v1/prewarm and the args of the "prewarm" action: one schema for every way in.
import { z } from 'zod'
import { InvalidRequestError } from '../errors.js'
import { describeZodIssues } from '../validation.js'

export const prewarmArgsSchema = z.strictObject({
  images: z.array(z.string().min(1)).max(500).optional(),
  dryRun: z.boolean().optional(),
})

export type PrewarmArgs = z.infer<typeof prewarmArgsSchema>

/** the args, or an InvalidRequestError naming every bad key */
export function prewarmArgsOrThrow(raw: unknown): PrewarmArgs {
  const parsed = prewarmArgsSchema.safeParse(raw ?? {})
  if (!parsed.success) throw new InvalidRequestError(`bad prewarm request: ${describeZodIssues(parsed.error.issues)}`)
  return parsed.data
}

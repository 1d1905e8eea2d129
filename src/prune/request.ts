// The body of POST /v1/prune and the args of the coordinator's "prune" command: one schema, so
// every way in is validated the same way.
import { z } from 'zod'
import { describeZodIssues } from '../validation.js'
import { InvalidRequestError } from '../errors.js'

export const pruneArgsSchema = z.strictObject({
  dryRun: z.boolean().optional(),
  /** the usage to free down to: 0 or 100 would mean "everything" or "nothing", never what is meant */
  targetPercent: z.number().min(1).max(99).optional(),
  /** run now with the rules of this named schedule (prune.schedules), deep parts included */
  schedule: z.string().min(1).optional(),
})

export type PruneArgs = z.infer<typeof pruneArgsSchema>

/** the args, or the reason they are bad (every bad key with its path) */
export function parsePruneArgs(raw: unknown): { ok: true; args: PruneArgs } | { ok: false; reason: string } {
  const result = pruneArgsSchema.safeParse(raw ?? {})
  if (result.success) return { ok: true, args: result.data }
  return { ok: false, reason: describeZodIssues(result.error.issues) }
}

/** the args, or an InvalidRequestError naming every bad key */
export function pruneArgsOrThrow(raw: unknown): PruneArgs {
  const parsed = parsePruneArgs(raw)
  if (!parsed.ok) throw new InvalidRequestError(`bad prune request: ${parsed.reason}`)
  return parsed.args
}

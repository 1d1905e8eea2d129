// Loading the agent's versioned JSON state files (usage times, wanted images, prewarm backoff) the
// same way: absent is empty, and a damaged file is moved aside and said so rather than stopping
// the agent, so the next write starts afresh.
import { renameSync } from 'node:fs'
import type { z } from 'zod'
import { readJsonFile } from './atomic.js'

export interface LoadStateFileOptions {
  /** what the file is, for the reason: "an image usage file" */
  what: string
  now: Date
  onDamaged?: (reason: string, movedTo: string) => void
}

/**
 * Reads `path` and checks it against `schema`; an absent file is `empty`. A file that is not valid
 * JSON or not of the schema is renamed to `<file>.damaged-<time>`, `onDamaged` is told why, and
 * `empty` is returned. An unreadable file (permissions, I/O) throws: moving it aside would lose it.
 */
export function loadStateFile<S extends z.ZodType>(
  path: string,
  schema: S,
  empty: z.infer<S>,
  opts: LoadStateFileOptions,
): z.infer<S> {
  let raw: unknown
  let problem: string | null = null
  try {
    raw = readJsonFile<unknown>(path, empty)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code) throw new Error(`cannot read ${path}: ${(err as Error).message}`)
    problem = (err as Error).message
  }
  if (problem === null) {
    const parsed = schema.safeParse(raw)
    if (parsed.success) return parsed.data
    problem = `${path} is not ${opts.what}: ${parsed.error.issues
      .map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`)
      .slice(0, 3)
      .join('; ')}`
  }
  const movedTo = `${path}.damaged-${opts.now.toISOString().replace(/[:.]/g, '-')}`
  renameSync(path, movedTo)
  opts.onDamaged?.(problem, movedTo)
  return empty
}

// The durable record of when each image was first seen and last used by a container. Docker keeps
// neither, so losing this file makes every image look brand new and never used: it is written
// atomically, and a damaged one is moved aside (and said so) rather than stopping the agent.
import { renameSync } from 'node:fs'
import { z } from 'zod'
import { readJsonFile, writeJsonAtomic } from '../state/atomic.js'

const isoTime = z.iso.datetime({ offset: true })

const recordSchema = z.object({
  firstSeen: isoTime,
  lastUsed: isoTime.nullable(),
})

const fileSchema = z.object({
  version: z.literal(1),
  images: z.record(z.string().min(1), recordSchema),
})

export type ImageUsageRecord = z.infer<typeof recordSchema>
export type ImageUsageMap = Record<string, ImageUsageRecord>

export const IMAGE_USAGE_FILE = 'image-usage.json'

/**
 * Reads the file; an absent one is empty. A file that is not valid JSON or not of this shape is
 * renamed to `<file>.damaged-<time>` and `onDamaged` told why, so the next write starts afresh.
 */
export function loadImageUsage(
  path: string,
  onDamaged: (reason: string, movedTo: string) => void,
  now: Date,
): ImageUsageMap {
  let raw: unknown
  let problem: string | null = null
  try {
    raw = readJsonFile<unknown>(path, { version: 1, images: {} })
  } catch (err) {
    // Unreadable (permissions, I/O) is not damage: moving the file aside would lose it.
    if ((err as NodeJS.ErrnoException).code) throw new Error(`cannot read ${path}: ${(err as Error).message}`)
    problem = (err as Error).message
  }
  if (problem === null) {
    const parsed = fileSchema.safeParse(raw)
    if (parsed.success) return parsed.data.images
    problem = `${path} is not an image usage file: ${parsed.error.issues
      .map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`)
      .slice(0, 3)
      .join('; ')}`
  }
  const movedTo = `${path}.damaged-${now.toISOString().replace(/[:.]/g, '-')}`
  renameSync(path, movedTo)
  onDamaged(problem, movedTo)
  return {}
}

export function saveImageUsage(path: string, images: ImageUsageMap): void {
  writeJsonAtomic(path, { version: 1, images })
}

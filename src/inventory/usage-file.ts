// The durable record of when each image was first seen and last used by a container. Docker keeps
// neither, so losing this file makes every image look brand new and never used: it is written
// atomically, and a damaged one is moved aside (and said so) rather than stopping the agent.
import { z } from 'zod'
import { writeJsonAtomic } from '../state/atomic.js'
import { loadStateFile } from '../state/state-file.js'

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
  const empty = { version: 1 as const, images: {} }
  return loadStateFile(path, fileSchema, empty, { what: 'an image usage file', now, onDamaged }).images
}

export function saveImageUsage(path: string, images: ImageUsageMap): void {
  writeJsonAtomic(path, { version: 1, images })
}

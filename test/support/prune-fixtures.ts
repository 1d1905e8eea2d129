// Shared set-up of the agent and CLI prune tests: a loop disk filled with real images, the durable
// image-usage record the agent and the CLI read (seeded with the times a test wants), and the
// watermarks that make a given number of images the right amount to free.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { PrivateDockerd } from '../harness/dockerd.js'
import { makeImage } from '../harness/images.js'
import { readFilesystem } from '../../src/inventory/disk.js'

export const MiB = 1024 * 1024
export const IMAGE_BYTES = 8 * MiB
const BASE = Date.now()
export const daysAgo = (d: number) => new Date(BASE - d * 86400_000).toISOString()

/** ref → image id, for the images a test made */
export function fill(dockerd: PrivateDockerd, refs: string[]): Record<string, string> {
  return Object.fromEntries(refs.map((ref) => [ref, makeImage(dockerd, { ref, sizeBytes: IMAGE_BYTES })]))
}

/** writes stateDir/image-usage.json as the agent keeps it: first seen and last used per image id */
export function seedUsage(
  stateDir: string,
  byId: Record<string, { firstSeen: string; lastUsed: string | null }>,
): void {
  mkdirSync(stateDir, { recursive: true })
  writeFileSync(join(stateDir, 'image-usage.json'), JSON.stringify({ version: 1, images: byId }))
}

/** usage now, and the percent at which about `images` test images must go to reach it */
export async function usageAndTarget(
  dockerd: PrivateDockerd,
  images: number,
): Promise<{ usedPercent: number; target: number }> {
  const d = await readFilesystem(dockerd.dataRoot)
  const target = Math.floor(((d.usedBytes - images * IMAGE_BYTES) / (d.usedBytes + d.availBytes)) * 10000) / 100
  return { usedPercent: d.usedPercent, target }
}

export function tagsOf(dockerd: PrivateDockerd): string[] {
  return dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']).trim().split('\n').filter(Boolean).sort()
}

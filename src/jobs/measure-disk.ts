// A fresh reading of the filesystem that holds Docker's data, for the prune executor: before
// planning and after each removal it needs the disk as it is now, not as the last snapshot saw it.
import { statfs } from 'node:fs/promises'
import { usedPercentOf } from './prune-plan.js'

export interface DiskReading {
  path: string
  sizeBytes: number
  usedBytes: number
  availBytes: number
  /** used / (used + available), as df computes it */
  usedPercent: number
}

export async function measureDisk(path: string): Promise<DiskReading> {
  const fs = await statfs(path)
  const sizeBytes = fs.blocks * fs.bsize
  const usedBytes = (fs.blocks - fs.bfree) * fs.bsize
  const availBytes = fs.bavail * fs.bsize
  return { path, sizeBytes, usedBytes, availBytes, usedPercent: round2(usedPercentOf({ usedBytes, availBytes })) }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100
}

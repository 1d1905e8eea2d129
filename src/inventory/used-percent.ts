// The one definition of disk usage, df's Use%: used / (used + available). Blocks reserved for root
// count as neither, so a filesystem whose available space is gone is 100 % used even though
// statfs still shows free blocks. The disk collector, the prune planner and executor, prewarm's
// room check all read usage through here.

export interface UsageBytes {
  usedBytes: number
  availBytes: number
}

/** what the filesystem can hold for Docker: used + available */
export function usableBytes(disk: UsageBytes): number {
  return disk.usedBytes + disk.availBytes
}

/** used / (used + available) × 100; 0 for an empty or unreadable filesystem */
export function usedPercent(disk: UsageBytes): number {
  const usable = usableBytes(disk)
  return usable > 0 ? (disk.usedBytes / usable) * 100 : 0
}

/** usedPercent to two decimals, as the snapshot, status and metrics report it */
export function reportedUsedPercent(disk: UsageBytes): number {
  const usable = usableBytes(disk)
  return usable > 0 ? Math.round((10000 * disk.usedBytes) / usable) / 100 : 0
}

/** the used bytes at which usage reaches `percent` */
export function usedBytesAtPercent(disk: UsageBytes, percent: number): number {
  return Math.floor((usableBytes(disk) * percent) / 100)
}

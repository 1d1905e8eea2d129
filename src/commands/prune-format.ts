// The human form of a prune report: what was planned, removed, skipped and kept, and whether
// enough was freed. --json prints the report itself.
import type { PruneReport } from '../prune/report.js'

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
  return rows.map((r) => '  ' + r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  '))
}

const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12)
const refs = (r: string[]) => r.join(', ') || '<none>'

export function formatPruneReport(r: PruneReport): string {
  const lines: string[] = []
  if (r.before) {
    const { path, usedPercent, usedBytes, availBytes } = r.before
    const used = `${usedPercent} % used (${formatBytes(usedBytes)} of ${formatBytes(usedBytes + availBytes)})`
    lines.push(`disk ${path}: ${used}; target ${r.targetPercent} %: need ${formatBytes(r.needBytes)}`)
  }
  if (r.schedule) lines.push(`rules of schedule ${r.schedule}${r.deep ? ' (deep)' : ''}`)
  if (r.error) lines.push(`prune could not run: ${r.error}`)
  lines.push(...formatContainers(r))
  lines.push(...formatVolumes(r))
  if (r.plan.length > 0) {
    const expected = formatBytes(r.plan.reduce((s, p) => s + p.expectedFreedBytes, 0))
    lines.push(`${r.dryRun ? 'would remove' : 'plan'} (${r.plan.length} images, ${expected} expected):`)
    lines.push(
      ...table([
        ['ID', 'SIZE', 'FREES', 'LAST USED', 'RULE', 'IMAGE', 'REASON'],
        ...r.plan.map((p) => [
          short(p.id),
          formatBytes(p.sizeBytes),
          formatBytes(p.expectedFreedBytes),
          p.lastUsed ?? 'never',
          p.rule,
          refs(p.refs),
          p.reason,
        ]),
      ]),
    )
  } else if (!r.error) {
    lines.push(r.needBytes === 0 ? 'nothing to do: usage is at or below the target' : 'nothing can be removed')
  }
  if (r.removed.length > 0) lines.push(`removed ${r.removed.length}: ${r.removed.map((p) => refs(p.refs)).join('; ')}`)
  for (const s of [...r.skipped, ...r.failed]) lines.push(`not removed ${short(s.id)} (${refs(s.refs)}): ${s.reason}`)
  const kept = r.kept.filter((k) => !k.reason.startsWith('not needed'))
  if (kept.length > 0) {
    lines.push(`kept (${kept.length}):`)
    lines.push(...table([['ID', 'IMAGE', 'REASON'], ...kept.map((k) => [short(k.id), refs(k.refs), k.reason])]))
  }
  if (r.buildCache)
    lines.push(
      'error' in r.buildCache
        ? `build cache: ${r.buildCache.error}`
        : `build cache: ${formatBytes(r.buildCache.prunedBytes)} pruned`,
    )
  if (!r.dryRun && r.after && !r.error) {
    const freed = `freed ${formatBytes(r.freedBytes)} of ${formatBytes(r.needBytes)} needed`
    lines.push(`${freed}; now ${r.after.usedPercent} % used${r.enough ? '' : ' — NOT ENOUGH'}`)
    const k = r.freedBytesByKind
    lines.push(
      `  by kind: containers ${formatBytes(k.containers)}, images ${formatBytes(k.images)}, ` +
        `build cache ${formatBytes(k.buildCache)}, volumes ${formatBytes(k.volumes)}`,
    )
  } else if (r.dryRun && r.needBytes > 0) {
    lines.push(r.enough ? 'the plan is expected to be enough' : 'the plan is NOT expected to be enough')
  }
  if (r.heldBy && r.heldBy.length > 0)
    lines.push(`the space is held by: ${r.heldBy.map((h) => `${h.kind} ${formatBytes(h.bytes)}`).join(', ')}`)
  return lines.join('\n') + '\n'
}

/** the dangling volumes rule (deep runs): what it removes (or would), and what it keeps and why */
function formatVolumes(r: PruneReport): string[] {
  const v = r.volumes
  if (!v) return []
  const listed = r.dryRun ? v.plan : v.removed
  const frees = formatBytes(listed.reduce((s, x) => s + x.sizeBytes, 0))
  const lines = [`${r.dryRun ? 'would remove' : 'removed'} ${listed.length} dangling volumes (${frees}):`]
  if (listed.length > 0)
    lines.push(
      ...table([['NAME', 'SIZE', 'REASON'], ...listed.map((x) => [x.name, formatBytes(x.sizeBytes), x.reason])]),
    )
  for (const s of v.skipped) lines.push(`volume not removed ${s.name}: ${s.reason}`)
  for (const k of v.kept) lines.push(`volume kept ${k.name}: ${k.reason}`)
  return lines
}

/** the exited containers rule: what it removes (or would), and what it keeps and why */
function formatContainers(r: PruneReport): string[] {
  const c = r.containers
  if (!c) return []
  const lines: string[] = []
  const listed = r.dryRun ? c.plan : c.removed
  const frees = listed.reduce((s, x) => s + x.sizeRwBytes + x.logBytes, 0)
  lines.push(`${r.dryRun ? 'would remove' : 'removed'} ${listed.length} exited containers (${formatBytes(frees)}):`)
  if (listed.length > 0)
    lines.push(
      ...table([
        ['ID', 'NAME', 'LAYER', 'LOG', 'REASON'],
        ...listed.map((x) => [short(x.id), x.name, formatBytes(x.sizeRwBytes), formatBytes(x.logBytes), x.reason]),
      ]),
    )
  for (const s of c.skipped) lines.push(`container not removed ${short(s.id)} (${s.name}): ${s.reason}`)
  for (const k of c.kept) lines.push(`container kept ${short(k.id)} (${k.name}): ${k.reason}`)
  return lines
}

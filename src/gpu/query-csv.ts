// Pure parse of `nvidia-smi --query-gpu=FIELDS --format=csv,noheader`: one line per GPU, cells
// separated by ", " in the order the fields were asked, no quoting (nvidia-smi prints none). Cells
// nvidia-smi cannot fill ("[N/A]", "[Not Supported]", …) are absent, as in the XML parse. A capture
// taken with a header row (`--format=csv`) is read by its header instead.
import { NvidiaSmiParseError, text } from './parse.js'

/** what one extra run asks: the compute capability, which no `-q -x` document carries */
export const COMPUTE_CAP_FIELDS = ['uuid', 'compute_cap'] as const

export function queryGpuArgs(fields: readonly string[]): string[] {
  return [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader']
}

export type QueryRow = Record<string, string | undefined>

/** Rows of a noheader CSV, keyed by the fields asked. Throws NvidiaSmiParseError on a malformed row. */
export function parseQueryGpuCsv(csv: string, fields: readonly string[]): QueryRow[] {
  return lines(csv).map((line, n) => row(cells(line), fields, n + 1))
}

/** Rows of a CSV with a header row; header names lose their " [unit]" suffix ("memory.total [MiB]"). */
export function parseQueryGpuCsvWithHeader(csv: string): QueryRow[] {
  const [header, ...rest] = lines(csv)
  if (header === undefined) return []
  const fields = headerFields(header)
  return rest.map((line, n) => row(cells(line), fields, n + 2))
}

/** the field names of a header row, units dropped */
export function headerFields(header: string): string[] {
  return cells(header).map((c) => c.replace(/\s*\[[^\]]*\]$/, ''))
}

/** compute capability per GPU uuid, from rows that carry uuid and compute_cap */
export function computeCapabilities(rows: QueryRow[]): Map<string, string> {
  const caps = new Map<string, string>()
  for (const r of rows) {
    const cap = r.compute_cap
    if (r.uuid !== undefined && cap !== undefined && /^\d+\.\d+$/.test(cap)) caps.set(r.uuid, cap)
  }
  return caps
}

function lines(csv: string): string[] {
  return csv.split(/\r?\n/).filter((l) => l.trim() !== '')
}

function cells(line: string): string[] {
  return line.split(',').map((c) => c.trim())
}

function row(values: string[], fields: readonly string[], lineNo: number): QueryRow {
  if (values.length !== fields.length) {
    const said = values.join(', ').slice(0, 200)
    throw new NvidiaSmiParseError(
      `nvidia-smi --query-gpu line ${lineNo} has ${values.length} cells, not ${fields.length}: ${said}`,
    )
  }
  const r: QueryRow = {}
  fields.forEach((f, i) => {
    r[f] = text(values[i])
  })
  return r
}

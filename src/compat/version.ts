// Version comparison exactly as NVIDIA's container runtime does it (libnvidia-container,
// dsl_compare_version): both sides may hold only digits and dots, components compare as unsigned
// integers from the left, and trailing zero components do not count ("11.0" equals "11").
export type Comparator = '=' | '!=' | '<' | '<=' | '>' | '>='

/** strtoumax's UINTMAX_MAX: the runtime treats a component this large as invalid. */
const UINTMAX_MAX = (1n << 64n) - 1n

/** true/false, or null when either side is not a version the runtime accepts */
export function compareVersions(v1: string, cmp: Comparator, v2: string): boolean | null {
  if (!/^[0-9.]*$/.test(v1) || !/^[0-9.]*$/.test(v2)) return null
  let i = 0
  let j = 0
  while (i < v1.length && j < v2.length) {
    const a = readNumber(v1, i)
    const b = readNumber(v2, j)
    if (a === null || b === null) return null
    if (a.value !== b.value) {
      if (cmp === '=') return false
      if (cmp === '!=') return true
      if (cmp === '<' || cmp === '<=') return a.value < b.value
      return a.value > b.value
    }
    i = skip(v1, a.end, '.')
    j = skip(v2, b.end, '.')
  }
  // What is left of the longer side counts only if it holds a non-zero digit.
  const rest1 = skip(v1, i, '.0') < v1.length
  const rest2 = skip(v2, j, '.0') < v2.length
  if (cmp === '!=') return rest1 || rest2
  if (!rest1 && !rest2) return cmp === '=' || cmp === '<=' || cmp === '>='
  if (cmp === '=') return false
  if (cmp === '<' || cmp === '<=') return !rest1 && rest2
  return rest1 && !rest2
}

function readNumber(s: string, from: number): { value: bigint; end: number } | null {
  let end = from
  while (end < s.length && s[end] >= '0' && s[end] <= '9') end++
  if (end === from) return null
  const value = BigInt(s.slice(from, end))
  if (value >= UINTMAX_MAX) return null
  return { value, end }
}

function skip(s: string, from: number, chars: string): number {
  let i = from
  while (i < s.length && chars.includes(s[i])) i++
  return i
}

/** a plain version string: digits separated by single dots, e.g. "535.104.05" */
export function isVersion(s: string): boolean {
  return /^\d+(\.\d+)*$/.test(s)
}

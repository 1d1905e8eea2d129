// NVIDIA's requirement language (NVIDIA_REQUIRE_* values), evaluated exactly as
// libnvidia-container evaluates `nvidia-container-cli configure --require`:
//  - a space separates alternatives (OR), a comma joins conditions (AND); empty pieces are skipped;
//  - a condition is KEY OP VALUE with KEY one of cuda, driver, arch, brand (any case) and OP one of
//    = != < <= > >= (a lone "!" is read as "!=", as the runtime's prefix match does);
//  - cuda, driver and arch compare as versions, brand as a case-insensitive string (= and != only);
//  - evaluation stops at the first alternative that holds, and within an alternative at the first
//    condition that fails, so a malformed condition after that point is never seen — as in the runtime;
//  - a fact the host does not know (no GPU visible, no brand) makes its condition hold.
import { compareVersions, type Comparator } from './version.js'

export const REQUIREMENT_KEYS = ['cuda', 'driver', 'arch', 'brand'] as const
export type RequirementKey = (typeof REQUIREMENT_KEYS)[number]

/** The runtime's operator table, in its order: the first whose prefix matches wins. */
const OPERATORS: Comparator[] = ['=', '!=', '<', '<=', '>', '>=']
const OPERATOR_CHARS = '<>=!'

/** driver-wide facts: nvidia-smi's driver version and the CUDA version the driver supports */
export interface DriverFacts {
  driverVersion?: string
  cudaVersion?: string
}

/** one visible GPU: compute capability ("8.0") and NVIDIA's brand token ("tesla") */
export interface DeviceFacts {
  arch?: string
  brand?: string
}

/** An expression the runtime rejects as "invalid expression": the container would not start. */
export class RequirementError extends Error {
  constructor(readonly reason: string, readonly expression: string, readonly condition?: string) {
    super(`invalid requirement expression ${JSON.stringify(expression)}: ${reason}`)
    this.name = 'RequirementError'
  }
}

export interface Evaluation {
  satisfied: boolean
  /** the alternative that held, as written */
  matched?: string
  /** the condition that failed in the first alternative, normalised "key op value" */
  failed?: string
  /** how many alternatives were tried and failed */
  alternativesFailed?: number
  /** the runtime's own message when unsatisfied */
  message?: string
}

interface Condition { key: string; written: string; op: Comparator; value: string }

/** The runtime formats a failed condition into a 128-byte buffer and calls it invalid when it does not fit. */
const EXPR_MAX = 128

/** Evaluates one requirement value for one device (null: no GPU visible). Throws RequirementError. */
export function evaluateRequirement(expression: string, driver: DriverFacts, device: DeviceFacts | null): Evaluation {
  let ret = true
  let matched: string | undefined
  let failed: string | undefined
  let alternativesFailed = 0
  for (const alternative of expression.split(' ')) {
    if (alternative === '') continue
    let allHeld = true
    for (const text of alternative.split(',')) {
      if (text === '') continue
      const condition = parseCondition(text, expression)
      const result = evaluateCondition(condition, driver, device)
      if (result === null) throw new RequirementError(invalidValueReason(condition, driver, device), expression, text)
      if (!result && Buffer.byteLength(`${condition.written} ${condition.op} ${condition.value}`) >= EXPR_MAX) {
        throw new RequirementError(`condition "${text}" is too long for the runtime (${EXPR_MAX} bytes at most)`, expression, text)
      }
      ret = result
      if (!ret) {
        failed ??= `${condition.key}${condition.op}${condition.value}`
        alternativesFailed++
        allHeld = false
        break
      }
    }
    // An alternative with no conditions at all leaves the previous result standing, as in the runtime.
    if (allHeld) {
      if (ret) matched = alternative
      break
    }
  }
  if (ret) return { satisfied: true, matched }
  return { satisfied: false, failed, alternativesFailed, message: unsatisfiedMessage(expression) }
}

/** Parses a condition the way the runtime does; throws RequirementError with the reason. */
function parseCondition(text: string, expression: string): Condition {
  const keyEnd = indexOfAny(text, OPERATOR_CHARS)
  if (keyEnd === 0) throw new RequirementError(`condition "${text}" has no key before its operator`, expression, text)
  if (keyEnd === text.length) throw new RequirementError(`condition "${text}" has no operator (one of = != < <= > >=)`, expression, text)
  let opEnd = keyEnd
  while (opEnd < text.length && OPERATOR_CHARS.includes(text[opEnd])) opEnd++
  const span = opEnd - keyEnd
  const rest = text.slice(keyEnd)
  const op = OPERATORS.find((candidate) => strncmpEqual(rest, candidate, span))
  if (!op) throw new RequirementError(`condition "${text}" has an unknown operator "${text.slice(keyEnd, opEnd)}"`, expression, text)
  const value = text.slice(opEnd)
  if (value === '') throw new RequirementError(`condition "${text}" has no value`, expression, text)
  const key = text.slice(0, keyEnd)
  if (!REQUIREMENT_KEYS.includes(key.toLowerCase() as RequirementKey)) {
    throw new RequirementError(`condition "${text}" has an unknown key "${key}" (known: ${REQUIREMENT_KEYS.join(', ')})`, expression, text)
  }
  return { key: key.toLowerCase(), written: key, op, value }
}

/** true/false, or null where the runtime answers "invalid" (a bad version, an operator brand lacks) */
function evaluateCondition(c: Condition, driver: DriverFacts, device: DeviceFacts | null): boolean | null {
  switch (c.key) {
    case 'cuda':
      return driver.cudaVersion === undefined ? true : compareVersions(driver.cudaVersion, c.op, c.value)
    case 'driver':
      return driver.driverVersion === undefined ? true : compareVersions(driver.driverVersion, c.op, c.value)
    case 'arch':
      return device?.arch === undefined ? true : compareVersions(device.arch, c.op, c.value)
    default: // brand
      if (device?.brand === undefined) return true
      if (c.op === '=') return device.brand.toLowerCase() === c.value.toLowerCase()
      if (c.op === '!=') return device.brand.toLowerCase() !== c.value.toLowerCase()
      return null
  }
}

function invalidValueReason(c: Condition, driver: DriverFacts, device: DeviceFacts | null): string {
  if (c.key === 'brand') return `brand compares only with = or !=, not ${c.op}`
  const host = c.key === 'cuda' ? driver.cudaVersion : c.key === 'driver' ? driver.driverVersion : device?.arch
  if (compareVersions(c.value, '=', c.value) === null) return `"${c.value}" is not a version (digits and dots) in ${c.key}${c.op}${c.value}`
  return `the host's ${c.key} version "${host}" is not a version the runtime can compare`
}

/** The runtime names the first alternative; for a cuda>= one it adds its advice. */
function unsatisfiedMessage(expression: string): string {
  const first = expression.split(' ')[0]
  return first.startsWith('cuda>=')
    ? `unsatisfied condition: ${first}, please update your driver to a newer version, or use an earlier cuda container`
    : `unsatisfied condition: ${first}`
}

/** C strncmp(a, b, n) == 0, with the end of a JS string read as the terminating NUL */
function strncmpEqual(a: string, b: string, n: number): boolean {
  for (let k = 0; k < n; k++) {
    const x = a[k] ?? ''
    const y = b[k] ?? ''
    if (x !== y) return false
    if (x === '') return true
  }
  return true
}

function indexOfAny(s: string, chars: string): number {
  for (let i = 0; i < s.length; i++) if (chars.includes(s[i])) return i
  return s.length
}

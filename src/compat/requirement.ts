// NVIDIA's requirement language (NVIDIA_REQUIRE_* values), evaluated exactly as
// libnvidia-container evaluates `nvidia-container-cli configure --require`:
//  - a space separates alternatives (OR), a comma joins conditions (AND); empty pieces are skipped;
//  - a condition is KEY OP VALUE with KEY one of cuda, driver, arch, brand (any case) and OP one of
//    = != < <= > >= (a lone "!" is read as "!=", as the runtime's prefix match does);
//  - cuda, driver and arch compare as versions, brand as a case-insensitive string (= and != only);
//  - evaluation stops at the first alternative that holds, and within an alternative at the first
//    condition that fails, so a malformed condition after that point is never seen — as in the runtime;
//  - with no GPU visible, brand and arch conditions hold, as the runtime then skips them;
//  - a fact the runtime would know but this host does not (a CUDA version older than NVIDIA's table,
//    a compute capability nvidia-smi cannot report) makes its condition unknown, and the answer
//    unknown wherever that condition could decide it.
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
  constructor(
    readonly reason: string,
    readonly expression: string,
    readonly condition?: string,
  ) {
    super(`invalid requirement expression ${JSON.stringify(expression)}: ${reason}`)
    this.name = 'RequirementError'
  }
}

export interface Evaluation {
  /** null: the answer depends on a fact this host does not know (see `unknown`) */
  satisfied: boolean | null
  /** the alternative that held, as written */
  matched?: string
  /** the condition that failed in the first alternative, normalised "key op value" */
  failed?: string
  /** how many alternatives were tried and failed */
  alternativesFailed?: number
  /** the runtime's own message when unsatisfied */
  message?: string
  /** the conditions that could not be decided, "key op value", with the fact each lacks */
  unknown?: string[]
}

interface Condition {
  key: string
  written: string
  op: Comparator
  value: string
}

/** The runtime formats a failed condition into a 128-byte buffer and calls it invalid when it does not fit. */
const EXPR_MAX = 128

/**
 * Evaluates one requirement value for one device (null: no GPU visible). Throws RequirementError.
 * Where a condition needs a fact the host does not know (a driver too old for the CUDA table, a
 * compute capability nvidia-smi cannot report), it is unknown: the runtime knows that fact, so an
 * unknown that could decide the answer makes it unknown (satisfied null), never a silent yes.
 */
export function evaluateRequirement(expression: string, driver: DriverFacts, device: DeviceFacts | null): Evaluation {
  let failed: string | undefined
  let alternativesFailed = 0
  let evaluated = false
  /** an earlier alternative was unknown: the runtime may have stopped there */
  let uncertain = false
  const unknown: string[] = []
  for (const alternative of expression.split(' ')) {
    if (alternative === '') continue
    let result: boolean | null = true
    let conditions = 0
    for (const text of alternative.split(',')) {
      if (text === '') continue
      conditions++
      // Reached for sure only when nothing undecided came before it.
      const surelyReached = !uncertain && result === true
      let held: boolean | null | 'unknown'
      let condition: Condition
      try {
        condition = parseCondition(text, expression)
        held = evaluateCondition(condition, driver, device)
        if (held === null) throw new RequirementError(invalidValueReason(condition, driver, device), expression, text)
      } catch (err) {
        if (surelyReached || !(err instanceof RequirementError)) throw err
        unknown.push(`${text} (the runtime may reject it: ${err.reason})`)
        result = null
        break
      }
      if (held === 'unknown') {
        unknown.push(`${condition.key}${condition.op}${condition.value} (${missingFact(condition.key)})`)
        result = null
        continue
      }
      if (!held && Buffer.byteLength(`${condition.written} ${condition.op} ${condition.value}`) >= EXPR_MAX) {
        const why = `condition "${text}" is too long for the runtime (${EXPR_MAX} bytes at most)`
        const tooLong = new RequirementError(why, expression, text)
        if (surelyReached) throw tooLong
      }
      if (!held) {
        if (!uncertain) failed ??= `${condition.key}${condition.op}${condition.value}`
        result = false
        break
      }
    }
    // An alternative with no conditions at all leaves the previous result standing, as in the runtime.
    if (conditions === 0) {
      if (!evaluated) return { satisfied: true, matched: alternative }
      break
    }
    evaluated = true
    if (result === true) return { satisfied: true, matched: alternative }
    if (result === null) uncertain = true
    else alternativesFailed++
  }
  if (uncertain) return { satisfied: null, unknown }
  if (!evaluated) return { satisfied: true }
  return { satisfied: false, failed, alternativesFailed, message: unsatisfiedMessage(expression) }
}

/** what the host lacks to decide a condition on this key */
function missingFact(key: string): string {
  if (key === 'cuda') return "the driver's CUDA version is unknown"
  if (key === 'driver') return 'the driver version is unknown'
  if (key === 'arch') return "the GPU's compute capability is unknown"
  return "the GPU's brand is unknown"
}

/** Parses a condition the way the runtime does; throws RequirementError with the reason. */
function parseCondition(text: string, expression: string): Condition {
  const keyEnd = indexOfAny(text, OPERATOR_CHARS)
  if (keyEnd === 0) throw new RequirementError(`condition "${text}" has no key before its operator`, expression, text)
  if (keyEnd === text.length)
    throw new RequirementError(`condition "${text}" has no operator (one of = != < <= > >=)`, expression, text)
  let opEnd = keyEnd
  while (opEnd < text.length && OPERATOR_CHARS.includes(text[opEnd])) opEnd++
  const span = opEnd - keyEnd
  const rest = text.slice(keyEnd)
  const op = OPERATORS.find((candidate) => strncmpEqual(rest, candidate, span))
  if (!op)
    throw new RequirementError(
      `condition "${text}" has an unknown operator "${text.slice(keyEnd, opEnd)}"`,
      expression,
      text,
    )
  const value = text.slice(opEnd)
  if (value === '') throw new RequirementError(`condition "${text}" has no value`, expression, text)
  const key = text.slice(0, keyEnd)
  if (!REQUIREMENT_KEYS.includes(key.toLowerCase() as RequirementKey)) {
    throw new RequirementError(
      `condition "${text}" has an unknown key "${key}" (known: ${REQUIREMENT_KEYS.join(', ')})`,
      expression,
      text,
    )
  }
  return { key: key.toLowerCase(), written: key, op, value }
}

/**
 * true/false; null where the runtime answers "invalid" (a bad version, an operator brand lacks);
 * 'unknown' where a GPU is visible, or a driver is, but this host does not know the fact. With no
 * GPU visible the runtime skips brand and arch, so they hold.
 */
function evaluateCondition(c: Condition, driver: DriverFacts, device: DeviceFacts | null): boolean | null | 'unknown' {
  switch (c.key) {
    case 'cuda':
      if (driver.cudaVersion === undefined) return unknownUnlessValid(c)
      return compareVersions(driver.cudaVersion, c.op, c.value)
    case 'driver':
      if (driver.driverVersion === undefined) return unknownUnlessValid(c)
      return compareVersions(driver.driverVersion, c.op, c.value)
    case 'arch':
      if (device === null) return true
      return device.arch === undefined ? unknownUnlessValid(c) : compareVersions(device.arch, c.op, c.value)
    default: // brand
      if (device === null) return true
      if (c.op !== '=' && c.op !== '!=') return null
      if (device.brand === undefined) return 'unknown'
      if (c.op === '=') return device.brand.toLowerCase() === c.value.toLowerCase()
      return device.brand.toLowerCase() !== c.value.toLowerCase()
  }
}

/** a value that is no version is invalid whatever the host's version: only a valid one is unknown */
function unknownUnlessValid(c: Condition): 'unknown' | null {
  return compareVersions(c.value, '=', c.value) === null ? null : 'unknown'
}

function invalidValueReason(c: Condition, driver: DriverFacts, device: DeviceFacts | null): string {
  if (c.key === 'brand') return `brand compares only with = or !=, not ${c.op}`
  const host = c.key === 'cuda' ? driver.cudaVersion : c.key === 'driver' ? driver.driverVersion : device?.arch
  if (compareVersions(c.value, '=', c.value) === null)
    return `"${c.value}" is not a version (digits and dots) in ${c.key}${c.op}${c.value}`
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

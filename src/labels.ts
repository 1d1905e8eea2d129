// Host labels as Kubernetes has them: keys `[prefix/]name` (prefix a DNS subdomain of at most 253
// characters, name at most 63 alphanumerics with - _ . inside), values empty or like a name; and
// label selectors in Kubernetes' syntax, equality-based (`rack=a`, `rack==a`, `gpu!=t4`) and
// set-based (`gpu in (h100,a100)`, `gpu notin (t4)`, `rack`, `!rack`), requirements joined by commas.
import { z } from 'zod'

const NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/** why `key` is not a valid label key, or null */
export function labelKeyProblem(key: string): string | null {
  const slash = key.indexOf('/')
  const prefix = slash >= 0 ? key.slice(0, slash) : null
  const name = slash >= 0 ? key.slice(slash + 1) : key
  if (prefix !== null && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))
    return `label key prefix "${prefix}" must be a lowercase DNS subdomain of at most 253 characters`
  if (name.length === 0 || name.length > 63 || !NAME.test(name))
    return `label key name "${name}" must be 1-63 letters, digits, '-', '_' or '.', starting and ending alphanumeric`
  return null
}

/** why `value` is not a valid label value, or null */
export function labelValueProblem(value: string): string | null {
  if (value === '') return null
  if (value.length > 63 || !NAME.test(value))
    return (
      `label value "${value}" must be empty or 1-63 letters, digits, '-', '_' or '.', ` +
      'starting and ending alphanumeric'
    )
  return null
}

export const labelsSchema = z.record(z.string(), z.string()).superRefine((labels, ctx) => {
  for (const [key, value] of Object.entries(labels)) {
    const problem = labelKeyProblem(key) ?? labelValueProblem(value)
    if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [key] })
  }
})

/** one label key, such as `rack` or `topology.example.com/rack` */
export const labelKeySchema = z.string().superRefine((key, ctx) => {
  const problem = labelKeyProblem(key)
  if (problem) ctx.addIssue({ code: 'custom', message: problem })
})

export type Labels = Record<string, string>

export type Requirement =
  { key: string; op: 'in' | 'notin'; values: string[] } | { key: string; op: 'exists' | 'notexists' }

export class SelectorError extends Error {
  override name = 'SelectorError'
}

/** Parses a label selector; throws SelectorError naming what is wrong. An empty selector matches all. */
export function parseSelector(text: string): Requirement[] {
  const parts: string[] = []
  let depth = 0
  let current = ''
  for (const ch of text) {
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (depth < 0) throw new SelectorError(`unbalanced ')' in selector "${text}"`)
    if (ch === ',' && depth === 0) {
      parts.push(current)
      current = ''
    } else current += ch
  }
  if (depth !== 0) throw new SelectorError(`unbalanced '(' in selector "${text}"`)
  parts.push(current)
  if (parts.length === 1 && parts[0].trim() === '') return []
  return parts.map((p) => parseRequirement(p.trim(), text))
}

function parseRequirement(part: string, whole: string): Requirement {
  const checkKey = (key: string) => {
    const problem = labelKeyProblem(key)
    if (problem) throw new SelectorError(`${problem} (in selector "${whole}")`)
    return key
  }
  const checkValue = (value: string) => {
    const problem = labelValueProblem(value)
    if (problem) throw new SelectorError(`${problem} (in selector "${whole}")`)
    return value
  }
  if (part === '') throw new SelectorError(`empty requirement in selector "${whole}"`)
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part)
  if (set) {
    const values = set[3].split(',').map((v) => checkValue(v.trim()))
    return { key: checkKey(set[1]), op: set[2] as 'in' | 'notin', values }
  }
  const eq = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part)
  if (eq) {
    const value = checkValue(eq[3].trim())
    return { key: checkKey(eq[1]), op: eq[2] === '!=' ? 'notin' : 'in', values: [value] }
  }
  if (part.startsWith('!')) return { key: checkKey(part.slice(1).trim()), op: 'notexists' }
  return { key: checkKey(part), op: 'exists' }
}

/** Kubernetes semantics: `!=` and `notin` also match a host without the key. */
export function matchesSelector(labels: Labels, requirements: Requirement[]): boolean {
  return requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key)
    switch (r.op) {
      case 'exists':
        return has
      case 'notexists':
        return !has
      case 'in':
        return has && r.values.includes(labels[r.key])
      case 'notin':
        return !has || !r.values.includes(labels[r.key])
    }
  })
}

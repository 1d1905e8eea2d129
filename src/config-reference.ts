// The configuration reference (docs/configuration.md), rendered from the schemas' JSON Schema: each key's
// type, default and description come from src/config.ts (with its sections under src/config/) and nowhere else.
import { writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { z } from 'zod'
import {
  agentConfigSchema,
  coordinatorConfigSchema,
  DEFAULT_AGENT_CONFIG_FILE,
  DEFAULT_COORDINATOR_CONFIG_FILE,
} from './config.js'
import { EXIT } from './exit-codes.js'

/** the part of JSON Schema that z.toJSONSchema writes for these schemas */
export interface JsonSchema {
  type?: string | string[]
  properties?: Record<string, JsonSchema>
  required?: string[]
  additionalProperties?: boolean | JsonSchema
  items?: JsonSchema
  anyOf?: JsonSchema[]
  enum?: unknown[]
  const?: unknown
  default?: unknown
  description?: string
  /** the default in words, for a default computed at start (the hostname) */
  defaultText?: string
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  minItems?: number
  maxItems?: number
  format?: string
}

/** one row of the reference: a key, or a section (an object of keys), by its path */
export interface ConfigKey {
  path: string
  type: string
  default: string
  description: string
  /** a key with keys of its own (an object, or a list of objects) */
  section: boolean
}

export const DOCS_FILE = fileURLToPath(new URL('../docs/configuration.md', import.meta.url))

/** a schema's JSON Schema as a config file is written: defaults are what a key left out takes */
export function configJsonSchema(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, { io: 'input' }) as JsonSchema
}

/** the object whose keys `s` holds: itself, its non-null alternative, or its items when a list of objects */
function keysOf(s: JsonSchema): { object: JsonSchema; suffix: string } | null {
  const alternatives = s.anyOf?.filter((a) => a.type !== 'null') ?? [s]
  if (alternatives.length !== 1) return null
  const [one] = alternatives
  if (one.properties) return { object: one, suffix: '.' }
  if (one.type === 'array' && one.items?.properties) return { object: one.items, suffix: '[].' }
  return null
}

/** every key of an object schema and of the objects below it, parents before their keys, in schema order */
export function configKeys(root: JsonSchema, prefix = ''): ConfigKey[] {
  const rows: ConfigKey[] = []
  for (const [name, s] of Object.entries(root.properties ?? {})) {
    const path = prefix + name
    const below = keysOf(s)
    rows.push({
      path,
      type: typeOf(s),
      default: defaultOf(s, root.required?.includes(name) ?? false),
      description: s.description ?? '',
      section: below !== null,
    })
    if (below) rows.push(...configKeys(below.object, path + below.suffix))
  }
  return rows
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER

function bounds(s: JsonSchema): string {
  const min = s.minimum
  const max = s.maximum === MAX_SAFE ? undefined : s.maximum
  if (s.exclusiveMinimum !== undefined) return ` > ${s.exclusiveMinimum}`
  if (min !== undefined && max !== undefined) return ` ${min}..${max}`
  if (min !== undefined) return ` ≥ ${min}`
  if (max !== undefined) return ` ≤ ${max}`
  return ''
}

function itemCount(s: JsonSchema): string {
  if (s.minItems !== undefined && s.maxItems !== undefined) return ` (${s.minItems} to ${s.maxItems})`
  if (s.maxItems !== undefined) return ` (at most ${s.maxItems})`
  if (s.minItems !== undefined) return ` (at least ${s.minItems})`
  return ''
}

/** the type of a value as JSON Schema states it, in words */
export function typeOf(s: JsonSchema): string {
  if (s.anyOf) {
    const parts = s.anyOf.map(typeOf)
    // null last: "integer 1..32, or null"
    parts.sort((a, b) => Number(a === 'null') - Number(b === 'null'))
    return parts.join(', or ')
  }
  if (Array.isArray(s.type)) return typeOf({ anyOf: s.type.map((type) => ({ ...s, type })) })
  if (s.enum) return `one of ${s.enum.map((v) => '`' + JSON.stringify(v).replace(/^"|"$/g, '') + '`').join(', ')}`
  switch (s.type) {
    case 'string':
      return s.format === 'uri' ? 'URL' : 'string'
    case 'integer':
    case 'number':
      return s.type + bounds(s)
    case 'boolean':
    case 'null':
      return s.type
    case 'array':
      if (!s.items) break
      return `list of ${s.items.properties ? 'objects' : typeOf(s.items)}${itemCount(s)}`
    case 'object':
      if (s.properties) return 'object'
      if (typeof s.additionalProperties === 'object') return `map of string to ${typeOf(s.additionalProperties)}`
      break
  }
  throw new Error(`the configuration reference cannot describe this JSON Schema: ${JSON.stringify(s)}`)
}

function defaultOf(s: JsonSchema, required: boolean): string {
  if (s.defaultText !== undefined) return s.defaultText
  if (s.default !== undefined) return '`' + JSON.stringify(s.default) + '`'
  return required ? 'required' : '—'
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ')
}

/** a table padded as prettier pads one, so the file stays as prettier writes it */
function table(header: string[], rows: string[][]): string {
  const cells = [header, ...rows].map((r) => r.map(cell))
  const widths = header.map((_, i) => Math.max(3, ...cells.map((r) => r[i].length)))
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`
  return [line(cells[0]), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n')
}

function keyTable(keys: ConfigKey[]): string {
  return table(
    ['key', 'type', 'default', 'description'],
    keys.map((k) => ['`' + k.path + '`', k.type, k.default, k.description]),
  )
}

/** one schema's part: its top-level keys, then a heading per top-level section with every key under it */
function renderSchema(schema: z.ZodType): string {
  const keys = configKeys(configJsonSchema(schema))
  const topLevel = keys.filter((k) => !k.path.includes('.') && !k.section)
  const parts = ['### Top-level keys', keyTable(topLevel)]
  for (const section of keys.filter((k) => !k.path.includes('.') && k.section)) {
    const inSection = keys.filter((k) => k.path === section.path || k.path.startsWith(section.path + '.'))
    parts.push(`### ${section.path}`, keyTable(inSection))
  }
  return parts.join('\n\n')
}

/** docs/configuration.md */
export function renderConfigReference(): string {
  const intro = [
    '# Configuration reference',
    'Generated from the schemas in `src/config.ts` by `npm run docs:config`: edit the descriptions there, ' +
      'not here. A key path such as `prune.volumes.dangling` names `dangling` under `volumes` under ' +
      '`prune`; `prune.schedules[].cron` is the `cron` of each entry of the `prune.schedules` list.',
    `The agent (\`gpuhost agent\` and the commands that read its config: \`check\`, \`prune\`, \`prewarm\`, ` +
      `\`status\`) reads the file named by \`--config FILE\`, else by \`$GPUHOST_CONFIG\`, else ` +
      `\`${DEFAULT_AGENT_CONFIG_FILE}\` when that file exists, else no file: every default. The coordinator ` +
      `(\`gpuhost coordinator\`) finds its file the same way, with \`${DEFAULT_COORDINATOR_CONFIG_FILE}\` ` +
      'as the system file. `gpuhost agent --print-config` and `gpuhost coordinator --print-config` print ' +
      'the effective configuration.',
    'The file is YAML, a mapping of keys to values; an empty file is every default. Every key is optional. ' +
      'An unknown key, a value of the wrong type and one out of its bounds are refused, as are a file that ' +
      `cannot be read and one that is not valid YAML: the command exits ${EXIT.config} and names every bad ` +
      'key by its path at once (`prune.foo: unknown key`, `prune.lowPercent: must be below prune.highPercent`).',
    'A default is what a key left out takes; a section left out takes the defaults of all its keys. ' +
      '"required" marks a key that must be given when its section is; "—" one that has no default ' +
      'and is simply not set when left out.',
  ]
  return [
    ...intro,
    '## Agent',
    `\`${DEFAULT_AGENT_CONFIG_FILE}\`; \`config/agent.yaml\` is an example.`,
    renderSchema(agentConfigSchema),
    '## Coordinator',
    `\`${DEFAULT_COORDINATOR_CONFIG_FILE}\`; \`config/coordinator.yaml\` has every default.`,
    renderSchema(coordinatorConfigSchema),
  ]
    .join('\n\n')
    .concat('\n')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(DOCS_FILE, renderConfigReference())
  process.stdout.write(`wrote ${DOCS_FILE}\n`)
}

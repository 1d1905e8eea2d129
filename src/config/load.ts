// Finding and reading a config file: the file's YAML parsed and checked against a schema, every bad key
// named at once by its path.
import { existsSync, readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import type { z } from 'zod'
import { ConfigError } from '../errors.js'
import { describeZodIssues } from '../validation.js'

export const DEFAULT_AGENT_CONFIG_FILE = '/etc/gpuhost/agent.yaml'
export const DEFAULT_COORDINATOR_CONFIG_FILE = '/etc/gpuhost/coordinator.yaml'

/** --config, else $GPUHOST_CONFIG, else the system file when it exists, else none (defaults). */
export function resolveConfigFile(flag: string | undefined, systemFile: string): string | null {
  if (flag) return flag
  if (process.env.GPUHOST_CONFIG) return process.env.GPUHOST_CONFIG
  return existsSync(systemFile) ? systemFile : null
}

export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown, file: string | null = null): z.infer<S> {
  const result = schema.safeParse(raw ?? {})
  if (result.success) return result.data
  throw new ConfigError(
    file,
    result.error.issues.map((issue) => describeZodIssues([issue], '(top level)')),
  )
}

export function loadConfigFile<S extends z.ZodType>(schema: S, file: string | null): z.infer<S> {
  if (file === null) return parseConfig(schema, {}, null)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`])
  }
  let raw: unknown
  try {
    raw = parseYaml(text, { prettyErrors: true })
  } catch (err) {
    throw new ConfigError(file, [`not valid YAML: ${(err as Error).message.split('\n')[0]}`])
  }
  if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw new ConfigError(file, ['(top level): must be a mapping of keys to values'])
  }
  return parseConfig(schema, raw, file)
}

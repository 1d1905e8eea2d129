// Registry credentials from a file in Docker's config.json format ("auths"), the file people
// already have from `docker login`. The secrets never leave this module except as the header or
// auth object a request needs; nothing here logs them.
import { readFileSync } from 'node:fs'
import { z } from 'zod'

export interface RegistryCredential {
  username?: string
  password?: string
  /** an OAuth refresh token Docker stores after some logins */
  identityToken?: string
}

const authEntry = z
  .object({
    auth: z.string().optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    identitytoken: z.string().optional(),
  })
  .loose()

const dockerConfig = z.object({ auths: z.record(z.string(), authEntry).default({}) }).loose()

/** index.docker.io, https://index.docker.io/v1/, registry-1.docker.io → docker.io; else the host[:port] */
export function normalizeRegistryKey(key: string): string {
  const host = key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase()
  return ['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'].includes(host) ? 'docker.io' : host
}

export function parseDockerConfig(text: string, file = 'credentials file'): Map<string, RegistryCredential> {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`)
  }
  const parsed = dockerConfig.safeParse(raw)
  if (!parsed.success)
    throw new Error(
      `${file} is not in Docker's config.json format: ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`,
    )
  const out = new Map<string, RegistryCredential>()
  for (const [key, entry] of Object.entries(parsed.data.auths)) {
    const cred: RegistryCredential = {}
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon > 0) {
        cred.username = decoded.slice(0, colon)
        cred.password = decoded.slice(colon + 1)
      }
    }
    if (entry.username) cred.username = entry.username
    if (entry.password) cred.password = entry.password
    if (entry.identitytoken) cred.identityToken = entry.identitytoken
    if (cred.username || cred.identityToken) out.set(normalizeRegistryKey(key), cred)
  }
  return out
}

/** Looks credentials up by registry domain; reads the file once, on first use. */
export class CredentialStore {
  private entries: Map<string, RegistryCredential> | null = null

  constructor(private readonly file: string | null) {}

  static fromMap(entries: Map<string, RegistryCredential>): CredentialStore {
    const store = new CredentialStore(null)
    store.entries = entries
    return store
  }

  get(domain: string): RegistryCredential | null {
    if (this.entries === null) {
      this.entries = this.file ? parseDockerConfig(readFileSync(this.file, 'utf8'), this.file) : new Map()
    }
    return this.entries.get(normalizeRegistryKey(domain)) ?? null
  }

  /** the X-Registry-Auth object the Docker engine takes with a pull */
  dockerAuth(domain: string): Record<string, string> | undefined {
    const c = this.get(domain)
    if (!c) return undefined
    return c.identityToken
      ? { identitytoken: c.identityToken, serveraddress: domain }
      : { username: c.username ?? '', password: c.password ?? '', serveraddress: domain }
  }
}

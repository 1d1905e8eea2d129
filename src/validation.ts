// Checks shared by the config and the protocol: one way to say what is wrong with a value zod
// refused (every bad key with its path), and what a base URL is.
import type { z } from 'zod'

export function describeZodIssues(issues: z.core.$ZodIssue[], top = '(body)'): string {
  return issues
    .map((i) => {
      const path = i.path.map(String).join('.') || top
      if (i.code === 'unrecognized_keys')
        return i.keys.map((k) => `${i.path.length ? `${path}.` : ''}${k}: unknown key`).join('; ')
      return `${path}: ${i.message}`
    })
    .join('; ')
}

/** http(s)://HOST[:PORT] with nothing after it but an optional `/` */
export function isBaseUrl(url: string): boolean {
  try {
    const u = new URL(url)
    return u.pathname === '/' && !u.search && !u.hash && !u.username && !u.password
  } catch {
    return false
  }
}

// One way to say what is wrong with a value zod refused: every bad key with its path.
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

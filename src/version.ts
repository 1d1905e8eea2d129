import { readFileSync } from 'node:fs'

// package.json sits two levels above the compiled file (dist/version.js) and one above src/.
function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      return JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')).version as string
    } catch {
      /* try the next place */
    }
  }
  return '0.0.0'
}

export const VERSION = readVersion()

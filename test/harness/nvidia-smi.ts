// A stand-in nvidia-smi: a script that prints a real captured output (test/fixtures/nvidia-smi),
// or hangs, or fails, as a test asks. Only the GPU itself cannot run here; its output is real.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const FIXTURES = resolve(fileURLToPath(new URL('../fixtures/nvidia-smi', import.meta.url)))

export type StubMode = { fixture: string } | { hang: true } | { fail: string }

interface Teardown { teardown(fn: () => void | Promise<void>): void }

/** writes the stub and returns its path; `fixture` is a path relative to test/fixtures/nvidia-smi */
export function fakeNvidiaSmi(t: Teardown, mode: StubMode): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-smi-'))
  const script = join(dir, 'nvidia-smi')
  let body: string
  if ('fixture' in mode) body = `exec cat '${join(FIXTURES, mode.fixture)}'`
  else if ('hang' in mode) body = 'exec sleep 3600'
  else body = `echo '${mode.fail.replace(/'/g, '')}' >&2; exit 9`
  writeFileSync(script, `#!/bin/sh\n# stand-in nvidia-smi for tests\n${body}\n`)
  chmodSync(script, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return script
}

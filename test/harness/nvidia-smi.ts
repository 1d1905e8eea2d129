// A stand-in nvidia-smi: a script that prints a real captured output (test/fixtures/nvidia-smi),
// or hangs, or fails, as a test asks. Only the GPU itself cannot run here; its output is real.
// `-q -x` prints the XML capture; `--query-gpu=…` picks, in the order asked, the columns of the
// CSV capture (nvidia-smi-stub.mjs), or fails as an old driver does for a field the capture lacks.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const FIXTURES = resolve(fileURLToPath(new URL('../fixtures/nvidia-smi', import.meta.url)))

/** fixture: the `-q -x` capture; queryGpu: a CSV capture with a header row, for `--query-gpu` */
export type StubMode = { fixture: string; queryGpu?: string } | { hang: true } | { fail: string }

const STUB = resolve(fileURLToPath(new URL('./nvidia-smi-stub.mjs', import.meta.url)))

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

/** writes the stub and returns its path; `fixture` is relative to test/fixtures/nvidia-smi, or absolute */
export function fakeNvidiaSmi(t: Teardown, mode: StubMode): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-smi-'))
  const script = join(dir, 'nvidia-smi')
  let body: string
  if ('fixture' in mode) {
    const csv = mode.queryGpu ? `GH_SMI_CSV='${resolve(FIXTURES, mode.queryGpu)}' ` : ''
    body = `GH_SMI_XML='${resolve(FIXTURES, mode.fixture)}' ${csv}exec '${process.execPath}' '${STUB}' "$@"`
  } else if ('hang' in mode) body = 'exec sleep 3600'
  else body = `echo '${mode.fail.replace(/'/g, '')}' >&2; exit 9`
  writeFileSync(script, `#!/bin/sh\n# stand-in nvidia-smi for tests\n${body}\n`)
  chmodSync(script, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return script
}

// Which real services this machine can run for integration tests, and the rule for missing ones:
// in CI (CI=true or GPUHOST_REQUIRE_INTEGRATION=1) a missing service fails the run; elsewhere the
// suite is skipped with a line that says what is missing.
import { execFileSync } from 'node:child_process'

export const REQUIRED_BINARIES = {
  dockerd: 'docker.io',
  docker: 'docker.io',
  'docker-registry': 'docker-registry',
  mkfs: 'e2fsprogs',
  prometheus: 'prometheus',
  promtool: 'prometheus',
  'prometheus-alertmanager': 'prometheus-alertmanager',
  amtool: 'prometheus-alertmanager',
  containerd: 'containerd',
  ctr: 'containerd',
  runc: 'runc',
  // Debian keeps the server binaries off PATH, under the major version
  '/usr/lib/postgresql/15/bin/pg_ctl': 'postgresql',
} as const

export type Binary = keyof typeof REQUIRED_BINARIES

export function which(bin: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || null
  } catch {
    return null
  }
}

export function integrationRequired(): boolean {
  return process.env.CI === 'true' || process.env.GPUHOST_REQUIRE_INTEGRATION === '1'
}

/** Why this machine cannot run a suite that needs `bins` (and root), or null when it can. */
export function missingFor(bins: Binary[], needRoot = true): string | null {
  const missing = bins.filter((b) => !which(b)).map((b) => `${b} (Debian package ${REQUIRED_BINARIES[b]})`)
  if (needRoot && process.getuid?.() !== 0) missing.unshift('root')
  return missing.length ? `needs ${missing.join(', ')}` : null
}

interface TapLike {
  fail(message: string): void
  plan?(n: number, comment?: string): void
  end(): void
}

/**
 * Call at the top of an integration test file. Returns false (and skips or fails the file) when
 * the services cannot run here.
 */
export function requireServices(t: TapLike, bins: Binary[]): boolean {
  const why = missingFor(bins)
  if (!why) return true
  if (integrationRequired()) {
    t.fail(`integration suite cannot run: ${why}; install them (see .ci/run)`)
  } else {
    process.stdout.write(`# SKIP integration suite: ${why}; run as root with them installed, or in CI\n`)
    t.plan?.(0, `skipped: ${why}`)
  }
  return false
}

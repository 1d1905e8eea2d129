// Debian's Prometheus and Alertmanager on loopback ports with short intervals, for end-to-end tests.
import { spawn } from 'node:child_process'
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { onCleanup, killAndWait } from './cleanup.js'
import { freePort, waitFor } from './ports.js'

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

export interface RunningService {
  url: string
  port: number
  log(): string
  dir: string
}

function startService(
  t: Teardown,
  name: string,
  bin: string,
  args: (dir: string, port: number) => string[],
  ready: string,
): Promise<RunningService> {
  return (async () => {
    const dir = mkdtempSync(join(tmpdir(), `gh-${name}-`))
    const port = await freePort()
    const logFile = join(dir, `${name}.log`)
    const out = openSync(logFile, 'a')
    const child = spawn(bin, args(dir, port), { stdio: ['ignore', out, out] })
    const undo = onCleanup(`${name} ${dir}`, () => {
      if (child.pid) killAndWait(child.pid, 5000)
      rmSync(dir, { recursive: true, force: true })
    })
    t.teardown(() => undo())
    const url = `http://127.0.0.1:${port}`
    await waitFor(
      `${name} ready`,
      async () => {
        if (child.exitCode !== null) throw new Error(`${name} exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`)
        return (await fetch(url + ready)).ok
      },
      30_000,
    )
    return { url, port, dir, log: () => readFileSync(logFile, 'utf8') }
  })()
}

/** Alertmanager with `config` (an object, written as YAML); clustering off. */
export function startAlertmanager(t: Teardown, config: object): Promise<RunningService> {
  return startService(
    t,
    'alertmanager',
    'prometheus-alertmanager',
    (dir, port) => {
      const file = join(dir, 'alertmanager.yml')
      writeFileSync(file, stringify(config))
      return [
        `--config.file=${file}`,
        `--storage.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--cluster.listen-address=',
      ]
    },
    '/-/ready',
  )
}

/** Prometheus scraping `targets` every `intervalSeconds`, evaluating `ruleFiles`, alerting `alertmanagerUrl`. */
export function startPrometheus(
  t: Teardown,
  opts: { targets: string[]; job?: string; ruleFiles: string[]; alertmanager: string; intervalSeconds?: number },
): Promise<RunningService> {
  const interval = `${opts.intervalSeconds ?? 2}s`
  return startService(
    t,
    'prometheus',
    'prometheus',
    (dir, port) => {
      const file = join(dir, 'prometheus.yml')
      writeFileSync(
        file,
        stringify({
          global: { scrape_interval: interval, evaluation_interval: interval },
          rule_files: opts.ruleFiles,
          alerting: {
            alertmanagers: [{ static_configs: [{ targets: [opts.alertmanager.replace(/^https?:\/\//, '')] }] }],
          },
          scrape_configs: [{ job_name: opts.job ?? 'gpuhost', static_configs: [{ targets: opts.targets }] }],
        }),
      )
      return [
        `--config.file=${file}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ]
    },
    '/-/ready',
  )
}

// Debian's prometheus-alertmanager on loopback, with one webhook receiver, for tests that need a
// real Alertmanager to deliver an alert (payload, bearer token, grouping) to the agent.
import { spawn } from 'node:child_process'
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { onCleanup, killAndWait } from '../harness/cleanup.js'
import { freePort, waitFor } from '../harness/ports.js'

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

export interface PrivateAlertmanager {
  url: string
  /** raises an alert through the v2 API, as Prometheus would */
  fire(labels: Record<string, string>): Promise<void>
  log(): string
}

export async function startAlertmanager(
  t: Teardown,
  receiver: { url: string; token: string },
): Promise<PrivateAlertmanager> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-am-'))
  const port = await freePort()
  const tokenFile = join(dir, 'token')
  writeFileSync(tokenFile, receiver.token + '\n')
  const config = join(dir, 'alertmanager.yml')
  writeFileSync(
    config,
    stringify({
      route: {
        receiver: 'gpuhost',
        group_by: ['alertname'],
        group_wait: '1s',
        group_interval: '2s',
        repeat_interval: '1h',
      },
      receivers: [
        {
          name: 'gpuhost',
          webhook_configs: [
            {
              url: receiver.url,
              send_resolved: true,
              http_config: { authorization: { type: 'Bearer', credentials_file: tokenFile } },
            },
          ],
        },
      ],
    }),
  )
  const logFile = join(dir, 'alertmanager.log')
  const out = openSync(logFile, 'a')
  const child = spawn(
    'prometheus-alertmanager',
    [
      `--config.file=${config}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=debug',
    ],
    { stdio: ['ignore', out, out] },
  )
  const undo = onCleanup(`alertmanager ${dir}`, () => {
    if (child.pid) killAndWait(child.pid, 5000)
    rmSync(dir, { recursive: true, force: true })
  })
  t.teardown(() => undo())
  const url = `http://127.0.0.1:${port}`
  await waitFor(`alertmanager on ${port}`, async () => (await fetch(`${url}/-/ready`)).ok, 20_000)
  return {
    url,
    log: () => readFileSync(logFile, 'utf8'),
    fire: async (labels) => {
      const res = await fetch(`${url}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([{ labels, annotations: { summary: 'test alert' }, startsAt: new Date().toISOString() }]),
      })
      if (!res.ok) throw new Error(`alertmanager refused the alert: ${res.status} ${await res.text()}`)
    },
  }
}

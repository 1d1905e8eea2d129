// A schedule the config cannot use stops the agent before it starts: exit 78 (EXIT.config), with the
// key named, for an expression node-cron refuses and for a zone Node.js does not know.
import t from 'tap'
import { runCli, testDir } from '../harness/agent.js'
import { EXIT } from '../../src/exit-codes.js'

t.test('a refused cron expression or time zone exits 78 naming the key', async (t) => {
  const dir = testDir(t)
  const file = dir.file(
    'bad-schedules.yaml',
    [
      'prune:',
      '  schedule: "0 3 * * 8"',
      '  schedules: [{ name: nightly, cron: "every night" }]',
      'prewarm: { schedule: "61 * * * *" }',
      'schedule: { timezone: Mars/Olympus_Mons }',
    ].join('\n'),
  )
  for (const command of [['agent'], ['check']]) {
    const r = runCli([...command, '--config', file])
    t.equal(r.code, EXIT.config, `${command[0]}: exit 78`)
    t.equal(EXIT.config, 78)
    for (const key of ['prune.schedule', 'prune.schedules.0.cron', 'prewarm.schedule', 'schedule.timezone'])
      t.match(r.stderr, new RegExp(`\\b${key.replaceAll('.', '\\.')}:`), `${command[0]}: names ${key}`)
    t.match(r.stderr, /prune\.schedule: must be a cron expression/)
  }
  const good = runCli([
    '--json',
    'agent',
    '--config',
    dir.file('zone.yaml', 'schedule: { timezone: Asia/Tokyo }\nprune: { schedule: "@daily" }\n'),
    '--print-config',
  ])
  t.equal(good.code, 0, good.stderr)
  t.match(JSON.parse(good.stdout), { schedule: { timezone: 'Asia/Tokyo' }, prune: { schedule: '@daily' } })
})

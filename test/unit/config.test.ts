import t from 'tap'
import {
  agentConfigSchema,
  coordinatorConfigSchema,
  coordinatorUrls,
  parseConfig,
  ConfigError,
} from '../../src/config.js'
import { dockerAddress } from '../../src/runtime/docker-api.js'

t.test('defaults are those of INTERFACES.md', async (t) => {
  const c = parseConfig(agentConfigSchema, {})
  t.equal(c.listen, '127.0.0.1:9477')
  t.equal(c.tokenFile, '/etc/gpuhost/token')
  t.equal(c.stateDir, '/var/lib/gpuhost')
  t.equal(c.docker.socket, null, 'unset: where DOCKER_HOST says')
  t.equal(dockerAddress(c.docker.socket, {}), '/var/run/docker.sock', 'and without DOCKER_HOST, the usual socket')
  t.same(c.gpu, { nvidiaSmi: 'nvidia-smi', timeoutSeconds: 10, intervalSeconds: 30, containerMemory: true })
  t.same(c.disk, {
    path: null,
    checkIntervalSeconds: 60,
    breakdownIntervalSeconds: 3600,
    breakdownTopLogs: 10,
    logWarnBytes: null,
  })
  t.equal(c.prune.highPercent, 85)
  t.equal(c.prune.lowPercent, 80)
  t.equal(c.prune.minAgeSeconds, 3600)
  t.same(c.prune.protect, [])
  t.equal(c.prune.keepPerRepository, 0)
  t.equal(c.prune.schedule, '0 3 * * 0')
  t.equal(c.prewarm.schedule, '0 2 * * *')
  t.equal(c.prewarm.concurrency, 2)
  t.equal(c.prewarm.retries, 3)
  t.same(c.coordinator.url, null)
  t.ok(c.hostId.length > 0, 'hostId defaults to the hostname')
  const k = parseConfig(coordinatorConfigSchema, {})
  t.equal(k.listen, '127.0.0.1:9478')
  t.equal(k.dataDir, '/var/lib/gpuhost-coordinator')
  t.match(k.store, { kind: 'sqlite', url: null })
})

t.test('coordinator.url: one URL or replicas in the order they are tried', async (t) => {
  const one = parseConfig(agentConfigSchema, { coordinator: { url: 'wss://a:9478/v1/agents' } })
  t.same(coordinatorUrls(one.coordinator), ['wss://a:9478/v1/agents'])
  const urls = ['wss://a:9478/v1/agents', 'wss://b:9478/v1/agents']
  t.same(coordinatorUrls(parseConfig(agentConfigSchema, { coordinator: { url: urls } }).coordinator), urls)
  t.same(coordinatorUrls(parseConfig(agentConfigSchema, {}).coordinator), [])
  t.throws(
    () => parseConfig(agentConfigSchema, { coordinator: { url: ['wss://a/v1/agents', 'http://b'] } }),
    /coordinator\.url/,
  )
  t.throws(() => parseConfig(agentConfigSchema, { coordinator: { url: [] } }), /coordinator\.url/)
})

t.test('store: postgres needs its url', async (t) => {
  t.throws(
    () => parseConfig(coordinatorConfigSchema, { store: { kind: 'postgres' } }),
    /store\.url: is required with kind: postgres/,
  )
  t.throws(
    () => parseConfig(coordinatorConfigSchema, { store: { kind: 'postgres', url: 'mysql://x' } }),
    /store\.url: must start with postgres:\/\/ or postgresql:\/\//,
  )
  const pg = parseConfig(coordinatorConfigSchema, { store: { kind: 'postgres', url: 'postgres://gpuhost@db/gpuhost' } })
  t.match(pg.store, { kind: 'postgres', poolSize: 10, heartbeatSeconds: 5, passwordFile: null })
})

t.test('every bad key is named by its path', async (t) => {
  try {
    parseConfig(agentConfigSchema, {
      prune: { lowPercent: 'x', highPercent: 101 },
      coordinator: { url: 'http://x' },
      prewarm: { mirrors: { 'docker.io': 'one' } },
    })
    t.fail('should throw')
  } catch (err) {
    t.type(err, ConfigError)
    const problems = (err as ConfigError).problems.join('\n')
    t.match(problems, /prune\.lowPercent:/)
    t.match(problems, /prune\.highPercent:/)
    t.match(problems, /coordinator\.url: must start with ws:\/\/ or wss:\/\//)
    t.match(problems, /prewarm\.mirrors\.docker\.io:/)
  }
})

t.test('low must be below high, unless the watcher is off', async (t) => {
  t.throws(
    () => parseConfig(agentConfigSchema, { prune: { highPercent: 80, lowPercent: 80 } }),
    /prune\.lowPercent: must be below prune\.highPercent/,
  )
  t.equal(parseConfig(agentConfigSchema, { prune: { highPercent: 100, lowPercent: 100 } }).prune.highPercent, 100)
})

t.test('nullable schedules switch jobs off', async (t) => {
  const c = parseConfig(agentConfigSchema, { prune: { schedule: null }, prewarm: { schedule: null } })
  t.equal(c.prune.schedule, null)
  t.equal(c.prewarm.schedule, null)
})

t.test('schedule.timezone: the host zone by default; an IANA name; anything else names the key', async (t) => {
  t.equal(parseConfig(agentConfigSchema, {}).schedule.timezone, null)
  for (const zone of ['Asia/Tokyo', 'UTC', 'America/Argentina/Buenos_Aires', 'Etc/GMT+5'])
    t.equal(parseConfig(agentConfigSchema, { schedule: { timezone: zone } }).schedule.timezone, zone)
  for (const zone of ['Mars/Olympus_Mons', '+05:00', '', 'Europe/Berlin; rm -rf /', 'x'.repeat(65)])
    t.throws(
      () => parseConfig(agentConfigSchema, { schedule: { timezone: zone } }),
      /schedule\.timezone: /,
      JSON.stringify(zone.slice(0, 20)),
    )
})

t.test('peers.tls: off by default; a certificate needs its key', async (t) => {
  t.same(parseConfig(agentConfigSchema, {}).peers.tls, { certFile: null, keyFile: null, caFile: null })
  t.same(parseConfig(agentConfigSchema, { peers: { tls: { caFile: '/etc/gpuhost/fleet-ca.pem' } } }).peers.tls, {
    certFile: null,
    keyFile: null,
    caFile: '/etc/gpuhost/fleet-ca.pem',
  })
  t.throws(
    () => parseConfig(agentConfigSchema, { peers: { tls: { certFile: '/etc/gpuhost/peer.pem' } } }),
    /peers\.tls\.keyFile.*certFile and keyFile go together/s,
  )
})

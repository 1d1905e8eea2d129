// The Host headers the agent's API serves (src/http/allowed-host.ts), on the spellings clients send.
import t from 'tap'
import { allowedHostCheck, hostName } from '../../src/http/allowed-host.js'

t.test('hostName', async (t) => {
  t.equal(hostName('gpu-1:9477'), 'gpu-1')
  t.equal(hostName('GPU-1.Example.'), 'gpu-1.example', 'lower case, no trailing dot')
  t.equal(hostName('[::1]:9477'), '::1')
  t.equal(hostName('[::ffff:127.0.0.1]'), '::ffff:127.0.0.1')
  t.equal(hostName('10.0.3.7:9477'), '10.0.3.7')
  for (const bad of ['', ':9477', 'a b', 'user@host', 'host/path', '[x]:1', 'gpu-1:port', '::1'])
    t.equal(hostName(bad), '', `malformed: ${JSON.stringify(bad)}`)
})

t.test('allowedHostCheck', async (t) => {
  const check = allowedHostCheck(['gpu-1', 'GPU-1.dc.example.', '', '.fleet.example'])
  const served = [
    undefined,
    '127.0.0.1:9477',
    '10.0.3.7:9477',
    '[::1]:9477',
    '[fe80::1]',
    'localhost:9477',
    'grafana.localhost',
    'gpu-1',
    'gpu-1.dc.example:9477',
    'fleet.example',
    'gpu-9.fleet.example:9477',
  ]
  for (const h of served) t.ok(check(h), `served: ${h}`)
  const refused = [
    'attacker.example',
    'gpu-1.attacker.example',
    'localhost.attacker.example',
    'fleet.example.attacker.example',
    'evilfleet.example',
    'gpu-2',
    '',
    'bad host',
  ]
  for (const h of refused) t.notOk(check(h), `refused: ${JSON.stringify(h)}`)
})

t.test('http.allowedHosts refuses a suffix of one label (a public suffix such as .com)', async (t) => {
  const { agentConfigSchema, parseConfig } = await import('../../src/config.js')
  t.same(parseConfig(agentConfigSchema, { http: { allowedHosts: ['.dc.example', 'gpu-1'] } }).http.allowedHosts, [
    '.dc.example',
    'gpu-1',
  ])
  t.throws(() => parseConfig(agentConfigSchema, { http: { allowedHosts: ['.com'] } }), /two labels at least/)
})

// Host facts: systeminformation's real answers on a test machine (test/fixtures/host/README.md) mapped
// to HostFacts, then hostile answers (oversized, control characters, wrong types, thousands of
// devices) mapped to facts the coordinator's hello schema accepts; and that schema refusing facts
// out of bounds, and the coordinator's rebuild keeping only the fields it names.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { release, totalmem } from 'node:os'
import { readHostFacts } from '../../src/inventory/host-facts.js'
import { boundedText, hostSummary, toHostFacts } from '../../src/inventory/host-facts-map.js'
import {
  HOST_BLOCK_DEVICES_MAX,
  HOST_TEXT_MAX,
  hostFactsSchema,
  rebuildHostFacts,
} from '../../src/inventory/host-facts-schema.js'
import { parseAgentMessage } from '../../src/protocol.js'

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/host/${name}`, import.meta.url), 'utf8'))
const AT = new Date('2026-12-04T20:47:00.000Z')

t.test('the facts of a real Debian 12 VM without DMI', async (t) => {
  const raw = fixture('debian12-firecracker.json')
  const facts = toHostFacts(raw, AT)
  t.same(facts, {
    readAt: '2026-12-04T20:47:00.000Z',
    os: {
      platform: 'linux',
      distro: 'Debian GNU/Linux',
      release: '12',
      codename: 'bookworm',
      kernel: '6.18.44-fc-v1252',
      arch: 'x86_64',
    },
    cpu: { manufacturer: 'AMD', brand: 'EPYC', physicalCores: 2, cores: 2 },
    memory: { totalBytes: 25276166144 },
    // no manufacturer (no DMI table), serial and sku '-' are not kept at all
    system: { model: 'Docker Container', virtual: false },
    // zram0 (memory) and the four loop devices are skipped; empty fsType, model, label are absent
    blockDevices: [{ name: 'vda', type: 'disk', sizeBytes: 274877906944, mount: '/' }],
    blockDevicesOmitted: 0,
    unavailable: [],
  })
  t.ok(hostFactsSchema.safeParse(facts).success, 'the coordinator accepts them')
  t.same(hostSummary(facts), { os: 'Debian GNU/Linux 12', cpu: 'AMD EPYC', system: 'Docker Container' })
  t.notOk(JSON.stringify(facts).includes(raw.osInfo.serial), 'the machine id is not among the facts')
})

t.test('a part that failed is absent and named', async (t) => {
  const raw = fixture('debian12-firecracker.json')
  const facts = toHostFacts(
    {
      osInfo: raw.osInfo,
      mem: raw.mem,
      unavailable: [{ part: 'system', reason: 'system did not answer within 10 s' }],
    },
    AT,
  )
  t.same(facts.cpu, {})
  t.same(facts.system, {})
  t.same(facts.blockDevices, [])
  t.equal(facts.memory.totalBytes, 25276166144)
  t.same(facts.unavailable, [{ part: 'system', reason: 'system did not answer within 10 s' }])
  t.ok(hostFactsSchema.safeParse(facts).success)
})

t.test('hostile answers become bounded facts', async (t) => {
  const huge = 'x'.repeat(100_000)
  const devices = Array.from({ length: 20_000 }, (_, i) => ({
    name: `nvme${i}n1`,
    type: 'disk',
    size: i,
    mount: i === 0 ? '/' + 'm'.repeat(300) : '/data',
    fsType: 'ext4\u0000\u001b[31m',
    model: { toString: () => 'object' },
    label: 42,
  }))
  const facts = toHostFacts(
    {
      osInfo: {
        distro: `Evil\nOS\u0007 ${huge}`,
        release: 12,
        kernel: ['6.1'],
        arch: 'x64',
        codename: '   ',
        platform: '\u{1F600}'.repeat(150),
      },
      cpu: { manufacturer: null, brand: 'A'.repeat(250), cores: 1e12, physicalCores: '8' },
      mem: { total: -1 },
      system: { manufacturer: 'Acme', model: 'unknown', virtual: 'yes', virtualHost: 'KVM' },
      blockDevices: [{ name: '' }, { name: 'loop7', type: 'loop' }, { name: 'ram0' }, ...devices],
      unavailable: [{ part: 'cpu', reason: 'r'.repeat(2000) }],
    },
    AT,
  )
  t.ok(facts.os.distro!.startsWith('Evil OS x'), 'control characters are spaces, runs of space one')
  t.equal(facts.os.distro!.length, HOST_TEXT_MAX)
  t.equal(facts.os.release, undefined, 'a number is not a text')
  t.equal(facts.os.kernel, undefined, 'an array is not a text')
  t.equal(facts.os.codename, undefined, 'blank is absent')
  t.equal(facts.os.platform!.length, HOST_TEXT_MAX, 'cut at the bound, never inside a surrogate pair')
  t.equal(facts.cpu.brand!.length, HOST_TEXT_MAX)
  t.equal(facts.cpu.cores, undefined, 'out of range')
  t.equal(facts.cpu.physicalCores, 8, 'a numeric string is a number')
  t.same(facts.memory, {}, 'a negative total is absent')
  t.same(facts.system, { manufacturer: 'Acme', virtualHost: 'KVM' }, "'unknown' and a non-boolean are dropped")
  t.equal(facts.blockDevices.length, HOST_BLOCK_DEVICES_MAX)
  t.equal(facts.blockDevicesOmitted, 20_000 - HOST_BLOCK_DEVICES_MAX)
  t.same(facts.blockDevices[0], { name: 'nvme0n1', type: 'disk', sizeBytes: 0, fsType: 'ext4 [31m' })
  t.equal(facts.blockDevices[1].mount, '/data')
  t.equal(facts.unavailable[0].reason.length, 500)
  const parsed = hostFactsSchema.safeParse(facts)
  t.ok(parsed.success, `the coordinator accepts what the agent made of it: ${parsed.error?.message ?? ''}`)
  t.ok(JSON.stringify(facts).length < 20_000, 'a few KiB at most')
})

t.test('boundedText', async (t) => {
  t.equal(boundedText('  a \t b  '), 'a b')
  t.equal(boundedText('-'), undefined)
  t.equal(boundedText(undefined), undefined)
  t.equal(boundedText('abcdef', 3), 'abc')
})

t.test('the hello schema refuses host facts out of bounds; the rebuild keeps only named fields', async (t) => {
  const facts = toHostFacts(fixture('debian12-firecracker.json'), AT)
  const hello = (host: unknown) =>
    JSON.stringify({
      v: 1,
      id: 'h-1',
      ts: AT.toISOString(),
      hostId: 'gpu-1',
      type: 'hello',
      version: '0.1.0',
      facts: { host },
    })
  const ok = parseAgentMessage(hello(facts), 1 << 20)
  t.ok(ok.ok)
  const refused = (host: unknown, why: RegExp) => {
    const r = parseAgentMessage(hello(host), 1 << 20)
    t.notOk(r.ok, `refused: ${why}`)
    if (!r.ok) t.match(r.error.message, why)
  }
  refused({ ...facts, os: { ...facts.os, distro: 'x'.repeat(HOST_TEXT_MAX + 1) } }, /facts\.host\.os\.distro/)
  refused({ ...facts, os: { ...facts.os, kernel: '6.1\n' } }, /control characters/)
  refused({ ...facts, memory: { totalBytes: 1.5 } }, /facts\.host\.memory\.totalBytes/)
  refused({ ...facts, cpu: { cores: -1 } }, /facts\.host\.cpu\.cores/)
  refused({ ...facts, blockDevices: Array(HOST_BLOCK_DEVICES_MAX + 1).fill({ name: 'sda' }) }, /blockDevices/)
  refused({ ...facts, unavailable: [{ part: 'gpu', reason: 'x' }] }, /unavailable/)
  refused('Debian', /facts\.host/)

  const withExtra = { ...facts, extra: 'x', os: { ...facts.os, injected: true }, blockDevices: [{ name: 'a', z: 1 }] }
  const r = parseAgentMessage(hello(withExtra), 1 << 20)
  t.ok(r.ok, 'a field a newer agent adds does not refuse the hello')
  if (r.ok && r.message.type === 'hello') {
    const stored = rebuildHostFacts(r.message.facts.host)
    t.same(stored, { ...facts, blockDevices: [{ name: 'a' }] }, 'and is not stored')
    t.notOk('extra' in stored!)
  }
  t.equal(rebuildHostFacts(undefined), null, 'an older agent sends none')
})

t.test('the facts are read in a child process: systeminformation never loads in this one', async (t) => {
  const facts = await readHostFacts()
  t.equal(facts.os?.kernel, release(), "this machine's kernel, as the child read it")
  t.equal(facts.memory?.totalBytes, totalmem())
  const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('systeminformation'))
  t.same(loaded, [], 'no systeminformation module in this process')
})

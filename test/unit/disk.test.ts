import t from 'tap'
import { diskFacts, mountFor, parseProcMounts } from '../../src/inventory/disk.js'

t.test('the mount that holds a path is the longest mountpoint prefix', async (t) => {
  const mounts = [
    { mount: '/' },
    { mount: '/var' },
    { mount: '/var/lib/docker/overlay2/abc/merged' },
    { mount: '/var/lib/dock' },
  ]
  t.equal(mountFor('/var/lib/docker', mounts)?.mount, '/var', '/var/lib/dock is not a parent of /var/lib/docker')
  t.equal(mountFor('/var', mounts)?.mount, '/var')
  t.equal(mountFor('/srv/docker', mounts)?.mount, '/')
  t.equal(mountFor('/srv', []), null)
})

t.test('used percent as df computes it: reserved blocks excluded', async (t) => {
  const facts = diskFacts('/var/lib/docker', { mount: '/var', size: 1000, used: 450, available: 500 })
  t.same(facts, {
    path: '/var/lib/docker',
    mountpoint: '/var',
    sizeBytes: 1000,
    usedBytes: 450,
    availBytes: 500,
    usedPercent: 47.37,
  })
  t.equal(diskFacts('/x', { mount: '/', size: 0, used: 0, available: 0 }).usedPercent, 0)
})

t.test('/proc/self/mounts with escaped names', async (t) => {
  t.same(parseProcMounts('/dev/vda / ext4 rw 0 0\n/dev/loop0 /tmp/my\\040disk ext4 rw 0 0\n'), ['/', '/tmp/my disk'])
})

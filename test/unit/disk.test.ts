import t from 'tap'
import { diskFacts, filesystemMountFor, mountFor, parseMountInfo } from '../../src/inventory/disk.js'

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

// As a host with dockerd shows it: the root filesystem, a loop disk, and dockerd's data root bind
// mounted onto itself (root /docker of the loop disk's filesystem).
const MOUNTINFO = [
  '22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
  '40 22 7:0 / /tmp/my\\040disk rw,relatime shared:20 - ext4 /dev/loop0 rw',
  '41 40 7:0 /docker /tmp/my\\040disk/docker rw,relatime - ext4 /dev/loop0 rw',
  '42 22 252:1 /var/lib/docker /var/lib/docker rw,relatime - ext4 /dev/vda1 rw',
  '',
].join('\n')

t.test('/proc/self/mountinfo with escaped names', async (t) => {
  t.same(parseMountInfo(MOUNTINFO).slice(0, 3), [
    { device: '252:1', root: '/', mount: '/' },
    { device: '7:0', root: '/', mount: '/tmp/my disk' },
    { device: '7:0', root: '/docker', mount: '/tmp/my disk/docker' },
  ])
})

t.test('the filesystem is named where it is mounted whole, as df names it', async (t) => {
  const mounts = parseMountInfo(MOUNTINFO)
  t.equal(filesystemMountFor('/var/lib/docker', mounts), '/', 'not the bind mount dockerd made of its root')
  t.equal(filesystemMountFor('/tmp/my disk/docker/overlay2', mounts), '/tmp/my disk')
  t.equal(filesystemMountFor('/srv', mounts), '/')
  // only a bind of a directory reaches the path: that mount is the answer
  const bindOnly = parseMountInfo('22 1 252:1 / / rw - ext4 /dev/vda1 rw\n50 22 8:0 /data /srv rw - xfs /dev/sdb rw')
  t.equal(filesystemMountFor('/srv/x', bindOnly), '/srv')
  t.equal(filesystemMountFor('/x', []), null)
})

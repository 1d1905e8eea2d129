// The harness itself: a private dockerd and a private containerd on loop disks, an upstream registry
// and a pull-through mirror.
import t from 'tap'
import { statfsSync } from 'node:fs'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { startRegistry } from '../harness/registry.js'
import { makeImage, pushImage } from '../harness/images.js'
import { startContainerd } from '../harness/containerd.js'
import { engineMissing } from '../harness/engines.js'
import { pushOciImage } from '../harness/oci-image.js'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

if (requireServices(t, ['dockerd', 'docker', 'docker-registry', 'mkfs'])) {
  t.test('private dockerd on a loop-mounted ext4', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    const info = JSON.parse(dockerd.docker(['info', '--format', '{{json .}}']))
    t.equal(info.DockerRootDir, dockerd.dataRoot, 'the data root is on the private disk')
    t.equal(info.Driver, 'overlay2')
    const fs = statfsSync(dockerd.mountpoint)
    t.ok(fs.blocks * fs.bsize < 300 * 1024 * 1024, 'the disk is the small loop file, not the host disk')
    const before = fs.bavail
    makeImage(dockerd, { ref: 'test/sized:1', sizeBytes: 20 * 1024 * 1024, env: { CUDA_VERSION: '12.2.0' } })
    const after = statfsSync(dockerd.mountpoint).bavail
    t.ok((before - after) * fs.bsize >= 20 * 1024 * 1024, 'a 20 MiB image takes at least 20 MiB of the loop disk')
    const env = JSON.parse(dockerd.docker(['image', 'inspect', 'test/sized:1', '--format', '{{json .Config.Env}}']))
    t.ok(env.includes('CUDA_VERSION=12.2.0'), 'the image carries the env it was made with')
  })

  t.test('pull through the mirror', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 256 })
    const upstream = await startRegistry(t)
    const mirror = await startRegistry(t, { proxyOf: upstream.url })
    makeImage(dockerd, { ref: 'test/mirrored:1', sizeBytes: 4 * 1024 * 1024 })
    pushImage(dockerd, 'test/mirrored:1', upstream.host)
    dockerd.docker(['rmi', 'test/mirrored:1'])
    dockerd.docker(['pull', '--quiet', `${mirror.host}/test/mirrored:1`])
    const ids = dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']).split('\n')
    t.ok(ids.includes(`${mirror.host}/test/mirrored:1`), 'the image was pulled from the mirror')
    t.match(mirror.log(), /test\/mirrored/, 'the mirror served the image')
    const res = await fetch(`${mirror.url}/v2/test/mirrored/tags/list`)
    t.same((await res.json()).tags, ['1'], 'the mirror now holds the image it fetched from upstream')
  })
}

const noContainerd = engineMissing('containerd')
t.test(
  'private containerd on a loop-mounted ext4, pulling through hosts.toml; gone after stop',
  { skip: noContainerd ?? false },
  async (t) => {
    const registry = await startRegistry(t)
    const containerd = await startContainerd(t, { diskMiB: 128 })
    const plugins = containerd.ctr(['plugins', 'ls'])
    t.match(plugins, /io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok/, 'the CRI plugin runs')
    const fs = statfsSync(containerd.mountpoint)
    t.ok(fs.blocks * fs.bsize < 150 * 1024 * 1024, 'the disk is the small loop file, not the host disk')
    containerd.setHosts(registry.host, [registry.host])
    const image = await pushOciImage(registry, { repoTag: 'test/oci:1', sizeBytes: 4 * 1024 * 1024 })
    const before = statfsSync(containerd.mountpoint).bavail
    containerd.ctr(['images', 'pull', '--plain-http', image.ref])
    t.match(containerd.ctr(['images', 'ls', '-q']), image.ref)
    const used = (before - statfsSync(containerd.mountpoint).bavail) * fs.bsize
    t.ok(used >= 8 * 1024 * 1024, `blob and snapshot of a 4 MiB layer take ${used} bytes of the loop disk`)
    await containerd.stop()
    t.equal(spawnSync('mountpoint', ['-q', containerd.mountpoint]).status === 0, false, 'unmounted')
    t.notOk(existsSync(containerd.dir), 'its directory is gone')
  },
)

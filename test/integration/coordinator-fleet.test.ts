// A small fleet against real parts: one agent watching a private dockerd that holds a CUDA image,
// two without it. The coordinator answers "which hosts can run this image, and why" from the
// verdict the holder reported and from the image's requirement put to each other host's driver.
import t from 'tap'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { makeImage } from '../harness/images.js'
import { startAgent } from '../harness/agent.js'
import { startCoordinator } from '../harness/coordinator.js'
import { fakeNvidiaSmi } from '../harness/nvidia-smi.js'
import { waitFor } from '../harness/ports.js'

const MiB = 1024 * 1024

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('fleet compat and fleet facts', async (t) => {
    const coord = await startCoordinator(t)
    const dockerd = await startDockerd(t, { diskMiB: 128 })
    const id = makeImage(dockerd, {
      ref: 'test/cuda:12.2',
      sizeBytes: 1 * MiB,
      env: { CUDA_VERSION: '12.2.0', NVIDIA_REQUIRE_CUDA: 'cuda>=12.2' },
    })
    const link = (hostId: string) => ({
      url: coord.agentsUrl,
      tokenFile: coord.tokenFileFor(hostId),
      reconnectMaxSeconds: 1,
    })
    const smi = (fixture: string) => fakeNvidiaSmi(t, { fixture: `xml/${fixture}` })
    const agents = [
      await startAgent(t, {
        hostId: 'a100-with-image',
        docker: { socket: dockerd.socket },
        coordinator: link('a100-with-image'),
        gpu: { nvidiaSmi: smi('a100-sxm4-80gb_mig-enabled_driver-535.54.03_dtd-v12_trimmed-1-of-4-gpus.xml') },
      }),
      await startAgent(t, {
        hostId: 'gt1030-old-driver',
        docker: { socket: '/nonexistent/docker.sock' },
        coordinator: link('gt1030-old-driver'),
        gpu: { nvidiaSmi: smi('geforce-gt-1030_driver-470.74_dtd-v11.xml') },
      }),
      await startAgent(t, {
        hostId: 'gpu-gone',
        docker: { socket: '/nonexistent/docker.sock' },
        coordinator: link('gpu-gone'),
        gpu: {
          nvidiaSmi: fakeNvidiaSmi(t, {
            fail: 'Unable to determine the device handle for GPU0000:3B:00.0: Unknown Error',
          }),
        },
      }),
    ]

    const compat = async () => (await coord.api('/v1/compat?image=test/cuda:12.2')).body
    await waitFor(
      'every host with its facts, and the image reported',
      async () => {
        const c = await compat()
        return (
          c.hosts.length === 3 &&
          c.requirement !== null &&
          c.hosts.every((h: any) => h.hostId === 'gpu-gone' || h.driverVersion)
        )
      },
      30_000,
      200,
    )
    const answer = await compat()
    t.equal(answer.evaluator, 'available')
    t.match(answer.requirement, {
      reportedBy: 'a100-with-image',
      cudaEnv: { NVIDIA_REQUIRE_CUDA: 'cuda>=12.2', CUDA_VERSION: '12.2.0' },
    })
    const byHost = Object.fromEntries(answer.hosts.map((h: any) => [h.hostId, h]))
    t.match(
      byHost['a100-with-image'],
      { compatible: true, source: 'host', driverVersion: '535.54.03', cudaVersion: '12.2' },
      "the holder's own verdict",
    )
    t.match(
      byHost['gt1030-old-driver'],
      { compatible: false, source: 'coordinator', driverVersion: '470.74', cudaVersion: '11.4' },
      'an old driver cannot run it',
    )
    t.ok(byHost['gt1030-old-driver'].reason.length > 0, `why: ${byHost['gt1030-old-driver'].reason}`)
    t.match(
      byHost['gpu-gone'],
      { compatible: null, source: 'none', reason: /no GPU facts/ },
      'no verdict without GPU facts, and why',
    )

    const same = (await coord.api(`/v1/compat?image=docker.io/test/cuda:12.2`)).body
    t.equal(
      same.requirement?.reportedBy,
      'a100-with-image',
      'a reference with the default registry names the same image',
    )

    const holder = (await coord.api('/v1/hosts/a100-with-image')).body
    t.equal(holder.disk.mountpoint, dockerd.mountpoint, 'disk facts of the Docker filesystem')
    t.equal(holder.images.count, 1, 'the image summary')
    t.ok(id.startsWith('sha256:'))
    for (const agent of agents) await agent.stop()
  })
}

// The NVIDIA runtime facts read from a real dockerd (a runtime registered as "nvidia" with
// --add-runtime, as the toolkit's `nvidia-ctk runtime configure` registers it), a config.toml, a
// CDI directory and a stand-in nvidia-ctk, all at paths of the test's own.
import t from 'tap'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readNvidiaRuntime } from '../../src/compat/nvidia-runtime-reader.js'
import { startDockerd } from '../harness/dockerd.js'
import { testDir } from '../harness/agent.js'
import { requireServices } from '../harness/services.js'
import { runtimeFor } from '../support/runtime.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'
import { DockerRuntime } from '../../src/runtime/docker.js'

function paths(t: Parameters<typeof testDir>[0], mode: string | null, ctkVersion: string | null) {
  const dir = testDir(t).path
  const configToml = join(dir, 'config.toml')
  if (mode !== null) writeFileSync(configToml, `[nvidia-container-runtime]\nlog-level = "info"\nmode = "${mode}"\n`)
  mkdirSync(join(dir, 'cdi'))
  writeFileSync(join(dir, 'cdi', 'nvidia.yaml'), 'cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices: []\n')
  writeFileSync(join(dir, 'cdi', 'README'), 'not a spec')
  const nvidiaCtk = join(dir, 'nvidia-ctk')
  writeFileSync(
    nvidiaCtk,
    ctkVersion === null
      ? '#!/bin/sh\nexit 1\n'
      : `#!/bin/sh\necho "NVIDIA Container Toolkit CLI version ${ctkVersion}"\n`,
  )
  chmodSync(nvidiaCtk, 0o755)
  return { configToml, cdiDirs: [join(dir, 'cdi'), join(dir, 'absent')], nvidiaCtk }
}

if (requireServices(t, ['dockerd', 'docker', 'mkfs'])) {
  t.test('runtimes from docker info, mode from config.toml, version from nvidia-ctk', async (t) => {
    const dockerd = await startDockerd(t, {
      diskMiB: 128,
      extraArgs: ['--add-runtime', 'nvidia=/usr/bin/nvidia-container-runtime'],
    })
    const docker = runtimeFor(dockerd)
    const legacy = await readNvidiaRuntime(docker, paths(t, 'legacy', '1.17.8'))
    t.match(legacy, {
      installed: true,
      dockerRuntimes: ['nvidia'],
      defaultRuntime: 'runc',
      mode: 'legacy',
      toolkitVersion: '1.17.8',
      enforced: true,
    })
    t.same(
      legacy.cdiSpecs.map((p) => p.split('/').slice(-2).join('/')),
      ['cdi/nvidia.yaml'],
    )
    const auto = await readNvidiaRuntime(docker, paths(t, null, '1.18.1'))
    t.match(auto, { installed: true, mode: null, effectiveMode: 'jit-cdi', enforced: false })
    const unknownVersion = await readNvidiaRuntime(docker, paths(t, 'auto', null))
    t.match(unknownVersion, { effectiveMode: 'unknown', toolkitVersion: null, enforced: false })
  })

  t.test('a dockerd without the NVIDIA runtime and no toolkit: nothing enforces', async (t) => {
    const dockerd = await startDockerd(t, { diskMiB: 128 })
    const facts = await readNvidiaRuntime(runtimeFor(dockerd), paths(t, null, null))
    t.match(facts, { installed: false, dockerRuntimes: [], enforced: false, reason: /no NVIDIA container runtime/ })
  })
}

t.test('Docker away: the files still say', async (t) => {
  const facts = await readNvidiaRuntime(
    new DockerRuntime(
      parseConfig(agentConfigSchema, { stateDir: testDir(t).path, docker: { socket: '/nonexistent/docker.sock' } }),
    ),
    paths(t, 'cdi', '1.16.2'),
  )
  t.match(facts, { installed: true, mode: 'cdi', enforced: false, defaultRuntime: null })
})

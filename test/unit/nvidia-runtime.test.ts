// Whether NVIDIA's runtime enforces NVIDIA_REQUIRE_* on this host, from Docker's runtimes, the
// toolkit's config.toml `mode`, its version (auto means jit-cdi from v1.18.0) and the CDI specs.
import t from 'tap'
import {
  judgeNvidiaRuntime,
  parseToolkitVersion,
  runtimeMode,
  type NvidiaRuntimeInputs,
} from '../../src/compat/nvidia-runtime.js'

// The shape of the toolkit's shipped config.toml (nvidia-ctk config default), cut to what is read.
const CONFIG = (mode: string) => `#accept-nvidia-visible-devices-as-volume-mounts = false
disable-require = false

[nvidia-container-cli]
environment = []
ldconfig = "@/sbin/ldconfig.real"

[nvidia-container-runtime]
#debug = "/var/log/nvidia-container-runtime.log"
log-level = "info"
mode = "${mode}"
runtimes = ["docker-runc", "runc", "crun"]

[nvidia-container-runtime.modes.cdi]
default-kind = "nvidia.com/gpu"
`
const base: NvidiaRuntimeInputs = {
  dockerRuntimes: ['io.containerd.runc.v2', 'nvidia', 'runc'],
  defaultRuntime: 'runc',
  configToml: null,
  toolkitVersion: null,
  cdiSpecs: [],
}

t.test('mode is read from the [nvidia-container-runtime] table only', async (t) => {
  t.equal(runtimeMode(CONFIG('legacy')), 'legacy')
  t.equal(runtimeMode(CONFIG('cdi')), 'cdi')
  t.equal(runtimeMode('[nvidia-container-runtime.modes.csv]\nmode = "x"\n'), null, 'not another table')
  t.equal(runtimeMode('[nvidia-container-runtime]\n# mode = "cdi"\nlog-level = "info"\n'), null, 'commented out')
  t.equal(
    parseToolkitVersion(
      'NVIDIA Container Toolkit CLI version 1.17.8\ncommit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d\n',
    ),
    '1.17.8',
  )
  t.equal(parseToolkitVersion('garbage'), null)
})

t.test('enforced only in legacy and csv modes', async (t) => {
  t.match(judgeNvidiaRuntime({ ...base, configToml: CONFIG('legacy') }), {
    installed: true,
    mode: 'legacy',
    effectiveMode: 'legacy',
    enforced: true,
    dockerRuntimes: ['nvidia'],
  })
  t.match(judgeNvidiaRuntime({ ...base, configToml: CONFIG('csv') }), { enforced: true })
  t.match(judgeNvidiaRuntime({ ...base, configToml: CONFIG('cdi') }), {
    effectiveMode: 'cdi',
    enforced: false,
    reason: /does not check NVIDIA_REQUIRE_\*/,
  })
  t.match(judgeNvidiaRuntime({ ...base, configToml: CONFIG('jit-cdi') }), { enforced: false })
})

t.test('auto: jit-cdi from toolkit 1.18.0, legacy before, not counted on when the version is unknown', async (t) => {
  t.match(judgeNvidiaRuntime({ ...base, configToml: CONFIG('auto'), toolkitVersion: '1.18.0' }), {
    mode: 'auto',
    effectiveMode: 'jit-cdi',
    enforced: false,
  })
  t.match(judgeNvidiaRuntime({ ...base, configToml: CONFIG('auto'), toolkitVersion: '1.17.8' }), {
    effectiveMode: 'legacy',
    enforced: true,
  })
  t.match(
    judgeNvidiaRuntime({ ...base, toolkitVersion: '1.14.6' }),
    { mode: null, effectiveMode: 'legacy', enforced: true },
    'no config file: the default, auto',
  )
  t.match(judgeNvidiaRuntime({ ...base, configToml: CONFIG('auto') }), {
    effectiveMode: 'unknown',
    enforced: false,
    reason: /cannot tell/,
  })
})

t.test('not installed: nothing enforces', async (t) => {
  const none = judgeNvidiaRuntime({ ...base, dockerRuntimes: ['runc', 'io.containerd.runc.v2'] })
  t.match(none, { installed: false, enforced: false, dockerRuntimes: [], reason: /no NVIDIA container runtime/ })
  t.match(
    judgeNvidiaRuntime({ ...base, dockerRuntimes: null, configToml: CONFIG('legacy') }),
    { installed: true, enforced: true },
    'Docker away: the config file still says',
  )
  t.same(judgeNvidiaRuntime({ ...base, cdiSpecs: ['/var/run/cdi/nvidia.yaml'], configToml: CONFIG('cdi') }).cdiSpecs, [
    '/var/run/cdi/nvidia.yaml',
  ])
})

// A pid's Docker container from /proc/PID/cgroup, in the layouts Docker uses, and the processes of
// nvidia-smi's -q -x captures.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { containerIdFromCgroup } from '../../src/gpu/containers.js'
import { parseNvidiaSmiXml } from '../../src/gpu/parse.js'
import { FIXTURES } from '../harness/nvidia-smi.js'

const ID = 'a'.repeat(12) + '0123456789abcdef'.repeat(3) + 'b'.repeat(4)

t.test('the container id in each cgroup layout', async (t) => {
  t.equal(containerIdFromCgroup(`0::/docker/${ID}\n`), ID, 'cgroup v2, cgroupfs driver')
  t.equal(containerIdFromCgroup(`0::/system.slice/docker-${ID}.scope\n`), ID, 'cgroup v2, systemd driver')
  t.equal(containerIdFromCgroup(`12:memory:/docker/${ID}\n11:cpu,cpuacct:/docker/${ID}\n`), ID, 'cgroup v1')
  t.equal(containerIdFromCgroup(`0::/../docker/${ID}\n`), ID, 'seen from inside another cgroup namespace')
  t.equal(containerIdFromCgroup('0::/user.slice/user-1000.slice/session-2.scope\n'), null, 'a host process')
  t.equal(containerIdFromCgroup('0::/init.scope\n'), null)
  t.equal(containerIdFromCgroup(''), null)
})

t.test("processes from the captures' <processes>", async (t) => {
  const gt1030 = parseNvidiaSmiXml(
    readFileSync(join(FIXTURES, 'xml/geforce-gt-1030_driver-470.74_dtd-v11.xml'), 'utf8'),
  )
  t.match(gt1030.gpus[0].processes, [{ pid: 607, usedMemoryBytes: 547 * 1024 * 1024 }, { pid: 746 }])
  const win = parseNvidiaSmiXml(
    readFileSync(join(FIXTURES, 'xml/geforce-rtx-2080_windows_driver-516.59_dtd-v11.xml'), 'utf8'),
  )
  t.equal(win.gpus[0].processes![0].usedMemoryBytes, undefined, 'N/A (WDDM): absent')
  const a100 = parseNvidiaSmiXml(
    readFileSync(join(FIXTURES, 'xml/a100-sxm4-40gb_mig-enabled_driver-510.47.03_dtd-v11.xml'), 'utf8'),
  )
  t.equal(a100.gpus[0].processes, undefined, 'an empty <processes>')
})

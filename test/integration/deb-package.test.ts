// The Debian package (`npm run package:deb`): its extracted tree runs with nothing of the checkout
// around it, and on this (disposable) machine it installs, upgrades keeping the edited config, the
// token and the state, and purges; the installed unit passes `systemd-analyze verify`.
import t from 'tap'
import { spawnSync, type SpawnSyncOptions } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import lockfile from 'proper-lockfile'
import { join } from 'node:path'
import { ROOT, testDir } from '../harness/agent.js'
import { integrationRequired, which } from '../harness/services.js'
import { ENGINE_KINDS, engineMissing, startEngine } from '../harness/engines.js'
import { fakeNvidiaSmi } from '../harness/nvidia-smi.js'
import { pushOciImage } from '../harness/oci-image.js'
import { startRegistry } from '../harness/registry.js'

// Building the package compiles better-sqlite3 when build/cache has no copy for this Node: minutes
// on a loaded machine, more than the suite's default per-file bound.
t.setTimeout(900_000)

/** one install test at a time on this machine, whichever checkout runs it */
const MACHINE_LOCK_DIR = '/tmp/gpuhost-deb-package-test'

const CLEAN_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' }

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000, ...opts })
  return { code: r.status, stdout: String(r.stdout), stderr: String(r.stderr), out: `${r.stdout}${r.stderr}` }
}

function must(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = run(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.out}`)
  return r.stdout
}

const missing = ['dpkg-deb', 'dpkg', 'dpkg-shlibdeps', 'make', 'g++'].filter((b) => !which(b))
if (process.getuid?.() !== 0) missing.unshift('root')
if (missing.length > 0) {
  if (integrationRequired()) t.fail(`needs ${missing.join(', ')}`)
  else t.plan(0, `skipped: needs ${missing.join(', ')}`)
} else {
  const out = testDir(t, 'gh-deb-')
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string
  const built = must('bash', ['packaging/deb/build.sh', '--no-build'], {
    cwd: ROOT,
    env: { ...process.env, GPUHOST_DEB_OUT: out.path },
  })
  t.comment(built.trim().split('\n').at(-1) ?? '')
  const deb = join(
    out.path,
    readdirSync(out.path).find((f) => f.endsWith('.deb'))!,
  )

  t.test('lintian: no error or warning beyond the explained overrides', async (t) => {
    if (!which('lintian')) {
      if (integrationRequired()) t.fail('lintian is missing (Debian package lintian)')
      else t.comment('skipped: needs lintian')
      return
    }
    const lint = run('lintian', ['--fail-on', 'error,warning', deb])
    t.equal(lint.code, 0, lint.out)
    t.notMatch(lint.stdout, /^[EW]: /m, 'no error or warning tag')
  })

  t.test('the extracted tree runs on its own', async (t) => {
    const root = testDir(t, 'gh-debx-').path
    must('dpkg-deb', ['-x', deb, root])
    const gpuhost = join(root, 'usr/bin/gpuhost')
    const opts = { cwd: root, env: CLEAN_ENV }
    t.equal(run(gpuhost, ['--version'], opts).stdout.trim(), version)
    const compat = run(gpuhost, ['compat', '--driver', '535.104.05', '--require', 'cuda>=12.2'], opts)
    t.equal(compat.code, 0, compat.out)
    t.match(compat.stdout, /^compatible: /)
    const refused = run(gpuhost, ['compat', '--driver', '470.57.02', '--require', 'cuda>=12.2'], opts)
    t.equal(refused.code, 1, 'an old driver is refused')
    const lib = join(root, 'usr/lib/gpuhost')
    for (const dev of ['typescript', 'tap', 'eslint', 'prettier', 'tsx', '@types/better-sqlite3'])
      t.notOk(existsSync(join(lib, 'node_modules', dev)), `no ${dev}`)
    // the native module loads in the bundled Node: it was compiled for that ABI
    const sqlite = run(
      join(lib, 'bin/node'),
      ['-e', "const D=require('better-sqlite3'); console.log(new D(':memory:').prepare('select 41+1 v').get().v)"],
      { cwd: lib, env: CLEAN_ENV },
    )
    t.equal(sqlite.stdout.trim(), '42', sqlite.out)
  })

  // The packaged tree on each runtime it claims (for containerd through the .proto files the
  // package must carry): a prewarm through a loopback registry, the inventory with a CUDA verdict
  // for each image (`check`), and a dry-run prune.
  for (const kind of ENGINE_KINDS)
    t.test(`the extracted tree on ${kind}: prewarm, inventory, a dry-run prune`, async (t) => {
      const absent = engineMissing(kind)
      if (absent) {
        if (integrationRequired()) t.fail(`needs ${absent}`)
        else t.comment(`skipped: needs ${absent}`)
        return
      }
      const engine = await startEngine(t, kind, { diskMiB: 200 })
      const registry = await startRegistry(t)
      engine.trustRegistry(registry.host)
      const cuda = { CUDA_VERSION: '11.7.1', NVIDIA_REQUIRE_CUDA: 'cuda>=11.7' }
      const here = await pushOciImage(registry, { repoTag: 'team/here:1', sizeBytes: 1024 ** 2, env: cuda })
      const warm = await pushOciImage(registry, { repoTag: 'team/warm:1', sizeBytes: 1024 ** 2, env: cuda })
      engine.pull(here.ref)
      const root = testDir(t, 'gh-debr-').path
      must('dpkg-deb', ['-x', deb, root])
      const config = join(root, 'agent.yaml')
      writeFileSync(
        config,
        JSON.stringify({
          stateDir: join(root, 'state'),
          tokenFile: null,
          ...engine.agentConfig,
          // a T4 on driver 515 (CUDA 11.7): both images run here
          gpu: { nvidiaSmi: fakeNvidiaSmi(t, { fixture: 'xml/tesla-t4_driver-515.105.01_dtd-v11.xml' }) },
          prewarm: { schedule: null, retries: 0 },
        }),
      )
      const gpuhost = (args: string[]) =>
        run(join(root, 'usr/bin/gpuhost'), [...args, '--config', config], { cwd: root, env: CLEAN_ENV })

      const prewarm = gpuhost(['prewarm', '--image', warm.ref])
      t.equal(prewarm.code, 0, prewarm.out)
      t.ok(engine.imageNames().includes(warm.ref), `${kind} holds ${warm.ref} after the prewarm`)

      const check = gpuhost(['--json', 'check'])
      t.equal(check.code, 0, check.out)
      const verdicts = new Map(
        (JSON.parse(check.stdout).images as { id: string; compatible: boolean }[]).map((i) => [i.id, i.compatible]),
      )
      t.same([verdicts.get(here.id), verdicts.get(warm.id)], [true, true], 'both images listed, each judged')

      const prune = gpuhost(['prune', '--dry-run'])
      t.equal(prune.code, 0, prune.out)
      for (const out of [prewarm.out, check.out, prune.out])
        t.notMatch(out, /ENOENT|not found|Cannot find module/, 'nothing the tree needs is missing')
    })

  t.test('install, upgrade, purge', async (t) => {
    // The package is installed machine-wide: a second run of the suite on the same machine waits here
    // for the first one's purge instead of finding its package (or dpkg's own lock) in the way.
    mkdirSync(MACHINE_LOCK_DIR, { recursive: true })
    const release = await lockfile.lock(MACHINE_LOCK_DIR, {
      lockfilePath: join(MACHINE_LOCK_DIR, 'install.lock'),
      realpath: false,
      // The steps below run dpkg synchronously, so the lock's mtime is not refreshed meanwhile: it is
      // taken for abandoned only after ten minutes (a run that died), not after the default 10 s.
      stale: 600_000,
      retries: { retries: 900, factor: 1, minTimeout: 1000, maxTimeout: 1000 },
    })
    t.teardown(() => release())
    if (run('dpkg-query', ['-W', 'gpuhost']).code === 0) {
      t.fail('a gpuhost package is already installed here; this test installs and purges its own')
      return
    }
    t.teardown(() => void run('dpkg', ['--purge', 'gpuhost']))
    const install = run('dpkg', ['-i', deb])
    t.equal(install.code, 0, install.out)
    t.match(must('id', ['-nG', 'gpuhost']), /\bdocker\b/, 'gpuhost is in the docker group')
    const token = statSync('/etc/gpuhost/token')
    t.equal(token.mode & 0o777, 0o600, 'the token is 0600')
    t.equal(token.uid, Number(must('id', ['-u', 'gpuhost'])), 'and the agent user owns it')
    const tokenText = readFileSync('/etc/gpuhost/token', 'utf8')
    t.ok(tokenText.trim().length >= 40, 'a 32-byte token')
    t.equal(run('/usr/bin/gpuhost', ['--version'], { env: CLEAN_ENV }).stdout.trim(), version)
    const unit = '/lib/systemd/system/gpuhost-agent.service'
    if (which('systemd-analyze')) {
      const verify = run('systemd-analyze', ['verify', unit])
      t.equal(verify.code, 0, `systemd-analyze verify ${unit}: ${verify.out}`)
      t.equal(verify.stderr.trim(), '', 'and no warning')
    } else if (integrationRequired()) t.fail('systemd-analyze is missing (Debian package systemd)')
    // the loaded config is the shipped conffile
    const config = JSON.parse(must('/usr/bin/gpuhost', ['--json', 'agent', '--print-config'], { env: CLEAN_ENV }))
    t.match(config, { stateDir: '/var/lib/gpuhost', tokenFile: '/etc/gpuhost/token' })

    // an operator's edit and the agent's state, then an upgrade to a later version
    appendFileSync('/etc/gpuhost/agent.yaml', 'labels: { rack: r7 }\n')
    writeFileSync('/var/lib/gpuhost/usage.json', '{"kept":true}\n')
    const unpacked = testDir(t, 'gh-debu-').path
    must('dpkg-deb', ['-R', deb, unpacked])
    const control = join(unpacked, 'DEBIAN/control')
    writeFileSync(control, readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${version}+1`))
    const next = join(out.path, 'next.deb')
    must('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z1', '--build', unpacked, next])
    const upgrade = run('dpkg', ['-i', next])
    t.equal(upgrade.code, 0, upgrade.out)
    t.equal(must('dpkg-query', ['-W', '-f=${Version}', 'gpuhost']), `${version}+1`)
    t.match(readFileSync('/etc/gpuhost/agent.yaml', 'utf8'), /labels: \{ rack: r7 \}/, 'the edited config stays')
    t.equal(readFileSync('/etc/gpuhost/token', 'utf8'), tokenText, 'the token stays')
    t.equal(readFileSync('/var/lib/gpuhost/usage.json', 'utf8'), '{"kept":true}\n', 'the state stays')
    const upgraded = JSON.parse(must('/usr/bin/gpuhost', ['--json', 'agent', '--print-config'], { env: CLEAN_ENV }))
    t.same(upgraded.labels, { rack: 'r7' })

    const purge = run('dpkg', ['--purge', 'gpuhost'])
    t.equal(purge.code, 0, purge.out)
    for (const gone of ['/usr/bin/gpuhost', '/usr/lib/gpuhost', '/etc/gpuhost', '/var/lib/gpuhost', unit])
      t.notOk(existsSync(gone), `${gone} is gone`)
  })
}

// Token files as readTokenFile takes them: owner-only, or root's with its group reading; anything
// open to other users refused with the fix named. Real files, real modes and owners.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { testDir } from '../harness/agent.js'
import { readTokenFile, tokenFileExposure } from '../../src/config.js'

t.test('tokenFileExposure', async (t) => {
  t.equal(tokenFileExposure(0o100600, 1000), null, '0600: the owner alone')
  t.equal(tokenFileExposure(0o100400, 1000), null, '0400')
  t.equal(tokenFileExposure(0o100640, 0), null, "0640 owned by root: the service's group reads it")
  t.equal(tokenFileExposure(0o100440, 0), null, '0440 owned by root (a Secret with fsGroup)')
  t.equal(tokenFileExposure(0o100640, 65532), 'readable by its group and not owned by root')
  t.equal(tokenFileExposure(0o100644, 0), 'readable by others')
  t.equal(tokenFileExposure(0o100604, 1000), 'readable by others')
  t.equal(tokenFileExposure(0o100602, 1000), 'writable by others')
  t.equal(tokenFileExposure(0o100620, 0), 'writable by its group')
})

t.test('readTokenFile on real files', async (t) => {
  const dir = testDir(t)
  const file = dir.file('token', '  s3cret\n')
  t.equal(readTokenFile(file), 's3cret', '0600: read, trimmed')
  chmodSync(file, 0o644)
  t.throws(() => readTokenFile(file), {
    message: new RegExp(
      `^token file ${file} is readable by others \\(mode 0644\\): chmod 600 ${file} and make the user the service runs`,
    ),
  })
  const link = join(dir.path, 'link')
  symlinkSync(file, link)
  t.throws(() => readTokenFile(link), /readable by others/, 'through a symlink (a Secret volume): the file it names')
  chmodSync(file, 0o660)
  t.throws(() => readTokenFile(file), /writable by its group/)
  chmodSync(file, 0o640)
  if (process.getuid?.() === 0) {
    t.equal(readTokenFile(file), 's3cret', '0640 owned by root')
    chownSync(file, 65532, 65532)
    // (the group rule for a file the service's own non-root user owns: tokenFileExposure above)
    t.throws(() => readTokenFile(file), /is owned by uid 65532, not by the user the service runs as/)
    chmodSync(file, 0o600)
    t.throws(
      () => readTokenFile(file),
      /is owned by uid 65532, not by the user the service runs as \(0\) or root: chown it/,
      '0600 owned by another user (who could set the token): refused',
    )
    chownSync(file, 0, 0)
    t.equal(readTokenFile(file), 's3cret', "0600 owned by the service's user")
  }
  // a FIFO would block the open and every read after it: refused at once
  const fifo = join(dir.path, 'fifo')
  spawnSync('mkfifo', ['-m', '600', fifo])
  t.throws(() => readTokenFile(fifo), /token file \S+fifo is not a regular file/)
  const big = dir.file('big', 'x'.repeat(70_000))
  t.throws(() => readTokenFile(big), /is over 65536 bytes/)
  t.equal(readTokenFile(null), null, 'unset: null')
  t.throws(() => readTokenFile(join(dir.path, 'missing')), { code: 'ENOENT' })
  chmodSync(file, 0o600)
  const empty = dir.file('empty', '\n')
  t.throws(() => readTokenFile(empty), /is empty/)
})

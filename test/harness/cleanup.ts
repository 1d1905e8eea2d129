// Cleanup that also runs when a test process dies: every service the harness starts registers an
// undo step here; they run on tap teardown, on normal exit, and on SIGINT/SIGTERM.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

type Undo = { name: string; sync: () => void }
const undos: Undo[] = []
let hooked = false

function runAll(): void {
  while (undos.length) {
    const undo = undos.pop()!
    try {
      undo.sync()
    } catch (err) {
      process.stderr.write(`# cleanup of ${undo.name} failed: ${(err as Error).message}\n`)
    }
  }
}

export function onCleanup(name: string, sync: () => void): () => void {
  if (!hooked) {
    hooked = true
    process.on('exit', runAll)
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        runAll()
        process.exit(130)
      })
    }
  }
  const undo = { name, sync }
  undos.push(undo)
  return () => {
    const i = undos.indexOf(undo)
    if (i >= 0) undos.splice(i, 1)
    undo.sync()
  }
}

/** kill a process tree leader, then wait (synchronously) until it is gone */
export function killAndWait(pid: number, graceMs = 10_000): void {
  // A killed child stays a zombie until node reaps it, which a synchronous wait never lets happen.
  const alive = () => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
    } catch {
      return false
    }
  }
  if (!alive()) return
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    /* gone */
  }
  const deadline = Date.now() + graceMs
  while (alive() && Date.now() < deadline) spawnSync('sleep', ['0.1'])
  if (alive()) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      /* gone */
    }
    while (alive()) spawnSync('sleep', ['0.05'])
  }
}

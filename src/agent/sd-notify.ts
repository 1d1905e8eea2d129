// Readiness for Type=notify units through systemd's own systemd-notify; silent without NOTIFY_SOCKET.
import { execFile } from 'node:child_process'

export function sdNotify(state: 'READY=1' | 'STOPPING=1', log?: { debug(o: object, m: string): void }): void {
  if (!process.env.NOTIFY_SOCKET) return
  const args = state === 'READY=1' ? ['--ready', `--pid=${process.pid}`] : ['--pid=' + process.pid, state]
  execFile('systemd-notify', args, (err) => {
    if (err) log?.debug({ err: err.message }, 'systemd-notify failed')
  })
}

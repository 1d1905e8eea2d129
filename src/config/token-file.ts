// Bearer token files (the agent's, the coordinator's admin and agent tokens, peer and database
// secrets): read only when no other user could have read or set them.
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync } from 'node:fs'

/**
 * Reads a bearer token file; null when the file is unset. Throws with the path when unreadable,
 * empty, or open to other users: readable or writable by others, writable by its group, or readable
 * by its group unless root owns it (root provisions the file for the service's group, as a kubelet
 * does for a Secret with fsGroup; the same rule PostgreSQL applies to its key file).
 */
export function readTokenFile(file: string | null): string | null {
  if (file === null) return null
  // Non-blocking: a FIFO or a device at the path must not hang the process (it is refused below).
  const fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK)
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new Error(`token file ${file} is not a regular file`)
    if (st.size > MAX_TOKEN_FILE_BYTES) throw new Error(`token file ${file} is over ${MAX_TOKEN_FILE_BYTES} bytes`)
    const { mode, uid } = st
    // Another user owning it could set the token; only the service's own user, or root, may.
    const euid = process.geteuid?.()
    if (euid !== undefined && uid !== euid && uid !== 0)
      throw new Error(
        `token file ${file} is owned by uid ${uid}, not by the user the service runs as (${euid}) or root: ` +
          `chown it to the service's user`,
      )
    const exposed = tokenFileExposure(mode, uid)
    if (exposed)
      throw new Error(
        `token file ${file} is ${exposed} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): ` +
          `chmod 600 ${file} and make the user the service runs as its owner (or chmod 640 with root its owner ` +
          "and the service's group its group)",
      )
    const token = readFileSync(fd, 'utf8').trim()
    if (!token) throw new Error(`token file ${file} is empty`)
    return token
  } finally {
    closeSync(fd)
  }
}

/** a token, a secret or a password is a line; a larger file is not one (and is not read whole) */
const MAX_TOKEN_FILE_BYTES = 64 * 1024

/** how a token file with this mode and owner is open to users other than the service's; null when it is not */
export function tokenFileExposure(mode: number, uid: number): string | null {
  if (mode & 0o004) return 'readable by others'
  if (mode & 0o002) return 'writable by others'
  if (mode & 0o020) return 'writable by its group'
  if (mode & 0o040 && uid !== 0) return 'readable by its group and not owned by root'
  return null
}

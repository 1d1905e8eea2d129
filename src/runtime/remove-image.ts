// Removes one image through the Docker API, never with force. Docker itself refuses (409) to remove
// an image a container uses, so the last word on "in use" is the daemon's, at the moment of removal.
import { repositoryOf } from '../registry/image-names.js'
import { isConnectionError, messageOf, pathPart, statusOf, type DockerApi } from './docker-api.js'
import type { RemovalJournal } from './removal-journal.js'
import { RuntimeUnavailableError, type RemoveHooks, type RemoveOutcome } from './runtime.js'

const REMOVE = { force: false, noprune: false } as const

/** DELETE /images/{ref}: by id, or one name (a tag or a digest) */
function remove(api: DockerApi, ref: string): Promise<unknown> {
  return api.within('DELETE /images/{name}', (abortSignal) =>
    api.docker.getImage(pathPart(ref)).remove({ ...REMOVE, abortSignal }),
  )
}

function inspect(api: DockerApi, ref: string) {
  return api.inspectImage(ref)
}

export interface RemoveContext {
  api: DockerApi
  journal: RemovalJournal
  /** true while this process pulls a name: such a name is never taken off */
  isPulling: (ref: string) => boolean
}

/**
 * By id first: Docker checks for containers before it touches any reference, so a conflict leaves
 * the image exactly as it was. An image tagged in several repositories cannot go by id without
 * force; then its references are removed one by one, and if the last one meets a container that
 * appeared meanwhile, the tags already removed are put back. A lost connection is thrown as
 * RuntimeUnavailableError: the next image would meet the same silence.
 */
export async function removeImage(
  ctx: RemoveContext,
  image: { id: string; refs: string[] },
  hooks: RemoveHooks = {},
): Promise<RemoveOutcome> {
  try {
    await remove(ctx.api, image.id)
    return { outcome: 'removed' }
  } catch (err) {
    if (isConnectionError(err)) throw unavailable(err)
    if (!isConflict(err) || !/multiple repositories/i.test(messageOf(err))) return classify(err)
  }
  try {
    return await removeByReferences(ctx, image, hooks)
  } catch (err) {
    if (isConnectionError(err)) throw unavailable(err)
    throw err
  }
}

async function removeByReferences(
  ctx: RemoveContext,
  image: { id: string; refs: string[] },
  hooks: RemoveHooks,
): Promise<RemoveOutcome> {
  const { api: docker, journal } = ctx
  const users = await docker.within('GET /containers/json', (abortSignal) =>
    docker.docker.listContainers({ all: true, filters: { ancestor: [image.id] }, abortSignal }),
  )
  if (users.length > 0) return { outcome: 'skipped', reason: `in use by a container (${users[0].Id.slice(0, 12)})` }
  // Every reference but one goes by name; the last goes with the image, by id, after Docker's check.
  const info = await inspect(docker, image.id)
  const tags = (info.RepoTags ?? []).filter((r) => r !== '<none>:<none>')
  const digests = (info.RepoDigests ?? []).filter((r) => !r.startsWith('<none>@'))
  const keep = tags.at(-1) ?? digests.at(-1)
  const untagged: string[] = []
  // Recorded before the first name goes: a crash from here on is undone on the next start.
  journal.begin(image.id, tags)
  try {
    for (const ref of [...tags, ...digests].filter((r) => r !== keep)) {
      try {
        // A name this process is pulling stays; the removal by id below then meets it and is
        // refused, and the names already taken off are put back.
        if (!ref.includes('@') && ctx.isPulling(ref)) continue
        // Docker removes a tag only by its name, and a pull may move the name to another image at
        // any moment. So the name's image is read again right before it goes, and the removal
        // follows at once: what is left is the gap between two back-to-back calls on one socket,
        // against pulls of other processes (this process's own pulls are excluded above). Should a
        // pull land in that gap, Docker still refuses to take the name's last image from a container.
        if ((await inspect(docker, ref)).Id !== image.id) continue
        await remove(docker, ref)
        if (!ref.includes('@')) untagged.push(ref)
      } catch (err) {
        // Removing a repository's last tag also drops its digests: those are gone already.
        if (statusOf(err) !== 404) throw err
      }
    }
    await hooks.beforeLastReference?.()
    await remove(docker, image.id)
    journal.end(image.id)
    return { outcome: 'removed' }
  } catch (err) {
    if (isConnectionError(err)) throw err // the journal keeps the names: they are put back once Docker answers
    const result = classify(err)
    const notRestored = await retag(docker, image.id, untagged)
    journal.end(image.id)
    if (notRestored.length > 0)
      return { outcome: 'failed', reason: `${result.reason}; could not restore ${notRestored.join(', ')}` }
    return result
  }
}

/**
 * Puts back the names that interrupted removals took off, where the image is still there and the
 * name has not since gone to another image (a pull after the crash wins). Entries stay in the
 * journal while Docker cannot be asked.
 */
export async function restoreInterrupted(docker: DockerApi, journal: RemovalJournal): Promise<string[]> {
  const restored: string[] = []
  for (const [id, entry] of Object.entries(journal.pending())) {
    try {
      const info = await inspect(docker, id).catch((err) => {
        if (statusOf(err) === 404) return null
        throw err
      })
      const present = new Set(info?.RepoTags ?? [])
      const missing: string[] = []
      for (const tag of info ? entry.tags.filter((t) => !present.has(t)) : []) {
        const holder = await inspect(docker, tag).catch((err) => {
          if (statusOf(err) === 404) return null
          throw err
        })
        if (holder === null) missing.push(tag)
      }
      const failed = await retag(docker, id, missing)
      restored.push(...missing.filter((t) => !failed.includes(t)))
      journal.end(id)
    } catch (err) {
      if (isConnectionError(err)) throw unavailable(err)
      throw err
    }
  }
  return restored
}

async function retag(docker: DockerApi, id: string, tags: string[]): Promise<string[]> {
  const failed: string[] = []
  for (const ref of tags) {
    const repo = repositoryOf(ref)
    try {
      await docker.within('POST /images/{name}/tag', (abortSignal) =>
        docker.docker.getImage(pathPart(id)).tag({ repo, tag: ref.slice(repo.length + 1), abortSignal }),
      )
    } catch {
      failed.push(ref)
    }
  }
  return failed
}

function classify(err: unknown): Exclude<RemoveOutcome, { outcome: 'removed' }> {
  const message = messageOf(err)
  if (isConflict(err)) {
    if (/container/i.test(message)) return { outcome: 'skipped', reason: `in use by a container: ${message}` }
    return { outcome: 'skipped', reason: `conflict: ${message}` }
  }
  if (statusOf(err) === 404) return { outcome: 'skipped', reason: `already gone: ${message}` }
  return { outcome: 'failed', reason: message }
}

function unavailable(err: unknown): RuntimeUnavailableError {
  return new RuntimeUnavailableError(`Docker is unreachable: ${messageOf(err)}`, err)
}

function isConflict(err: unknown): boolean {
  return statusOf(err) === 409
}

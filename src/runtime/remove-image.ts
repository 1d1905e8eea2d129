// Removes one image through the Docker API, never with force. Docker itself refuses (409) to remove
// an image a container uses, so the last word on "in use" is the daemon's, at the moment of removal.
import type Docker from 'dockerode'
import { repositoryOf } from '../prune/plan.js'

export type RemoveOutcome =
  | { outcome: 'removed' }
  | { outcome: 'skipped'; reason: string }
  | { outcome: 'failed'; reason: string }

const REMOVE = { force: false, noprune: false } as const

/**
 * By id first: Docker checks for containers before it touches any reference, so a conflict leaves
 * the image exactly as it was. An image tagged in several repositories cannot go by id without
 * force; then its references are removed one by one, and if the last one meets a container that
 * appeared meanwhile, the tags already removed are put back.
 */
export async function removeImage(docker: Docker, image: { id: string; refs: string[] }, hooks: RemoveHooks = {}): Promise<RemoveOutcome> {
  try {
    await docker.getImage(image.id).remove(REMOVE)
    return { outcome: 'removed' }
  } catch (err) {
    if (!isConflict(err) || !/multiple repositories/i.test(messageOf(err))) return classify(err)
  }
  return removeByReferences(docker, image, hooks)
}

export interface RemoveHooks {
  /** runs after the extra references are gone and before the image itself goes (tests race it here) */
  beforeLastReference?: () => Promise<void> | void
}

async function removeByReferences(docker: Docker, image: { id: string; refs: string[] }, hooks: RemoveHooks): Promise<RemoveOutcome> {
  const users = await docker.listContainers({ all: true, filters: { ancestor: [image.id] } })
  if (users.length > 0) return { outcome: 'skipped', reason: `in use by a container (${users[0].Id.slice(0, 12)})` }
  // Every reference but one goes by name; the last goes with the image, by id, after Docker's check.
  const info = await docker.getImage(image.id).inspect()
  const tags = (info.RepoTags ?? []).filter((r) => r !== '<none>:<none>')
  const digests = (info.RepoDigests ?? []).filter((r) => !r.startsWith('<none>@'))
  const keep = tags.at(-1) ?? digests.at(-1)
  const untagged: string[] = []
  try {
    for (const ref of [...tags, ...digests].filter((r) => r !== keep)) {
      try {
        // A pull may have moved this name to another image since the inspect: leave that one alone.
        if ((await docker.getImage(ref).inspect()).Id !== image.id) continue
        await docker.getImage(ref).remove(REMOVE)
        if (!ref.includes('@')) untagged.push(ref)
      } catch (err) {
        // Removing a repository's last tag also drops its digests: those are gone already.
        if (statusOf(err) !== 404) throw err
      }
    }
    await hooks.beforeLastReference?.()
    await docker.getImage(image.id).remove(REMOVE)
    return { outcome: 'removed' }
  } catch (err) {
    const result = classify(err)
    const notRestored = await retag(docker, image.id, untagged)
    if (notRestored.length > 0) return { outcome: 'failed', reason: `${result.reason}; could not restore ${notRestored.join(', ')}` }
    return result
  }
}

async function retag(docker: Docker, id: string, tags: string[]): Promise<string[]> {
  const failed: string[] = []
  for (const ref of tags) {
    const repo = repositoryOf(ref)
    try {
      await docker.getImage(id).tag({ repo, tag: ref.slice(repo.length + 1) })
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

function isConflict(err: unknown): boolean {
  return statusOf(err) === 409
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode
}

/** Docker's own message ({"message": …} in the reply), else the error's */
export function messageOf(err: unknown): string {
  const json = (err as { json?: { message?: string } }).json
  if (json && typeof json.message === 'string') return json.message
  return (err as Error).message ?? String(err)
}

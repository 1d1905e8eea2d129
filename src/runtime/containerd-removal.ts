// Removing images and containers on containerd, never forced. containerd itself would delete an image
// a container was made from, so the guards are ours: no container of it, not pinned, no pull in
// flight writing one of its names. Its names go one by one behind a journal entry, so a removal cut
// short (a crash, a stop) can put them back at the next start.
import { isNotFound } from './containerd-client.js'
import { listContainers, type ContainerdAccess } from './containerd-view.js'
import { RemovalJournal } from './removal-journal.js'
import { RuntimeUnavailableError, type RemoveHooks, type RemoveOutcome } from './runtime.js'

export class ContainerdRemovals {
  private readonly journal: RemovalJournal

  constructor(
    private readonly access: ContainerdAccess,
    stateDir: string,
    private readonly isPulling: (name: string) => boolean,
  ) {
    this.journal = new RemovalJournal(stateDir)
  }

  async removeImage(target: { id: string; refs: string[] }, hooks?: RemoveHooks): Promise<RemoveOutcome> {
    const { client, call } = this.access
    const view = await this.access.view()
    const image = view.images.find((i) => i.id === target.id)
    if (!image) return { outcome: 'skipped', reason: 'gone already' }
    const user = view.containers.find((c) => c.imageId === image.id)
    if (user) return { outcome: 'skipped', reason: `in use by container ${user.id.slice(0, 12)} (${user.state})` }
    if (image.pinned) return { outcome: 'skipped', reason: 'pinned' }
    const names = image.records.map((r) => r.name)
    const pulled = names.find((n) => this.isPulling(n))
    if (pulled) return { outcome: 'skipped', reason: `a pull in flight is writing ${pulled}` }
    this.journal.begin(image.id, names, image.records[0]!.target)
    try {
      for (const [i, name] of names.entries()) {
        const last = i === names.length - 1
        if (last) await hooks?.beforeLastReference?.()
        if (last) {
          // A container made while the names went keeps the image: the last name stays.
          const again = await call(() => listContainers(client))
          const now = again.find((c) => names.includes(c.image))
          if (now) return { outcome: 'skipped', reason: `in use by container ${now.id.slice(0, 12)} (created)` }
        }
        // sync on the last name: containerd's garbage collection has run when the call returns,
        // so the disk shows what was freed.
        await call(() => client.call('images', 'Delete', { name, sync: last })).catch((err) => {
          if (!isNotFound(err)) throw err
        })
      }
      this.journal.end(image.id)
      return { outcome: 'removed' }
    } catch (err) {
      if (err instanceof RuntimeUnavailableError) throw err
      return { outcome: 'failed', reason: (err as Error).message }
    }
  }

  async removeContainer(id: string): Promise<RemoveOutcome> {
    const { client, call } = this.access
    const containers = await call(() => listContainers(client))
    const c = containers.find((x) => x.id === id)
    if (!c) return { outcome: 'skipped', reason: 'gone already' }
    try {
      // containerd refuses a container that still has a task (running or not): never forced.
      await call(() => client.call('containers', 'Delete', { id }))
    } catch (err) {
      if (err instanceof RuntimeUnavailableError) throw err
      if (isNotFound(err)) return { outcome: 'skipped', reason: 'gone already' }
      return { outcome: 'skipped', reason: (err as Error).message }
    }
    if (c.snapshotKey) {
      await call(() => client.call('snapshots', 'Remove', { snapshotter: c.snapshotter, key: c.snapshotKey })).catch(
        (err) => {
          if (!isNotFound(err)) throw err
        },
      )
    }
    return { outcome: 'removed' }
  }

  hasInterrupted(): boolean {
    return Object.keys(this.journal.pending()).length > 0
  }

  /** puts back the names of removals cut short; returns the names put back */
  async recoverInterrupted(): Promise<string[]> {
    const { client, call } = this.access
    const pending = this.journal.pending()
    const restored: string[] = []
    for (const [id, entry] of Object.entries(pending)) {
      if (entry.target) {
        for (const name of entry.tags) {
          const created = await call(() =>
            client.call('images', 'Create', { image: { name, target: entry.target } }),
          ).then(
            () => true,
            (err) => {
              if (err instanceof RuntimeUnavailableError) throw err
              return false // already there, or its content is gone: nothing to put back
            },
          )
          if (created) restored.push(name)
        }
      }
      this.journal.end(id)
    }
    return restored
  }
}

// The containerd runtime's health as its calls find it: a call that fails because the socket does not
// answer marks the runtime unreachable, the next one that succeeds marks it reachable again, and
// listeners hear each change once.
import { RuntimeUnavailableError, type RuntimeHealth } from './runtime.js'

export class ContainerdHealth {
  private current: RuntimeHealth = { reachable: false, reason: 'not collected yet' }
  private readonly listeners = new Set<(h: RuntimeHealth) => void>()
  /** the root dir last read, kept for health reports while containerd does not answer */
  lastRootDir: string | null = null

  get(): RuntimeHealth {
    return this.current
  }

  onChange(listener: (h: RuntimeHealth) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** runs one or more calls to containerd, keeping the health up to date with their outcome */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      const out = await fn()
      if (!this.current.reachable) this.set({ ...this.current, reachable: true, reason: undefined })
      return out
    } catch (err) {
      if (err instanceof RuntimeUnavailableError) this.markUnreachable(err)
      throw err
    }
  }

  markUnreachable(err: Error): void {
    this.set({ reachable: false, reason: err.message, rootDir: this.lastRootDir ?? undefined })
  }

  set(h: RuntimeHealth): void {
    const c = this.current
    const changed =
      h.reachable !== c.reachable || h.reason !== c.reason || h.version !== c.version || h.rootDir !== c.rootDir
    this.current = h
    if (changed) for (const listener of this.listeners) listener(h)
  }
}

// One job runner: at most one job of a kind at a time, and a trigger that arrives while one runs
// joins it rather than starting a second. Every trigger (watcher, cron, webhook, coordinator, CLI)
// goes through here, so they all share one path and one set of guards.

export type JobKind = 'prune' | 'prewarm'

export class JobRunner {
  private readonly running = new Map<JobKind, { key: string; promise: Promise<unknown> }>()

  /**
   * Runs `job` unless a job of the same kind and key is already running, in which case the caller
   * joins it and gets its result. A job of the same kind but another key waits for the running one.
   */
  async run<T>(kind: JobKind, key: string, job: () => Promise<T>): Promise<{ result: T; joined: boolean }> {
    for (;;) {
      const current = this.running.get(kind)
      if (!current) break
      if (current.key === key) return { result: (await current.promise) as T, joined: true }
      await current.promise.catch(() => undefined)
    }
    const promise = job()
    this.running.set(kind, { key, promise })
    try {
      return { result: await promise, joined: false }
    } finally {
      this.running.delete(kind)
    }
  }

  isRunning(kind: JobKind): boolean {
    return this.running.has(kind)
  }

  /** resolves when no job is running (for a clean stop) */
  async idle(): Promise<void> {
    while (this.running.size > 0) {
      await Promise.allSettled([...this.running.values()].map((r) => r.promise))
    }
  }
}

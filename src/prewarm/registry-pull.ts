// One image pulled by the runtime from its registry or one of its mirrors, and named as wanted.
import { PullError, type ContainerRuntime, type PullProgress } from '../runtime/runtime.js'
import { familiarName, formatRef, onRegistry, type ImageRef } from '../registry/reference.js'
import { attemptSignal } from './attempt-signal.js'
import type { PrewarmDeps } from './deps.js'
import type { PlanItem } from './plan.js'
import { progressReporter } from './pull-progress.js'

export async function pullFrom(deps: PrewarmDeps, item: PlanItem, ref: ImageRef, source: string): Promise<void> {
  const viaMirror = source !== ref.domain
  const target = viaMirror ? onRegistry(ref, source) : ref
  const original = formatRef(ref)
  const attempt = attemptSignal(deps.config.prewarm)
  const signal = attempt.signal
  const remote = item.remote!
  const report = progressReporter(deps, item.ref, source)
  let last: PullProgress = { bytesDone: 0, bytesTotal: remote.compressedBytes }
  const inFlight = [original, formatRef(target)]
  for (const name of inFlight) deps.pulls.add(name)
  try {
    await deps.runtime
      .pull({
        name: familiarName(target.domain, target.repository),
        reference: target.digest ?? target.tag!,
        auth: deps.credentials.dockerAuth(source),
        signal,
        layers: remote.layers ?? [],
        totalBytes: remote.compressedBytes,
        onProgress: (p) => {
          attempt.progressed()
          last = p
          report(p)
        },
      })
      .catch((err) => {
        if (signal.aborted) throw new PullError(attempt.why(), false)
        throw err
      })
    deps.bus.publish('pull.progress', { ref: item.ref, source, ...last, bytesDone: remote.compressedBytes })
    await nameAfterPull(deps.runtime, target, ref, viaMirror)
  } finally {
    attempt.done()
    for (const name of inFlight) deps.pulls.remove(name)
  }
}

/**
 * An image pulled through a mirror is named after the mirror; give it its original name and take
 * the mirror's name off (never forced: the image keeps its original name, so only the name goes).
 * A pull by digest makes no tag, so a `repo:tag@digest` reference gets its tag here too. An image
 * wanted by digest alone keeps the mirror's digest name: Docker cannot give it another one.
 */
async function nameAfterPull(
  runtime: ContainerRuntime,
  pulled: ImageRef,
  ref: ImageRef,
  viaMirror: boolean,
): Promise<void> {
  if (!ref.tag || (!viaMirror && !ref.digest)) return
  const pulledName =
    familiarName(pulled.domain, pulled.repository) + (pulled.digest ? `@${pulled.digest}` : `:${pulled.tag}`)
  await runtime.tagImage(pulledName, `${familiarName(ref.domain, ref.repository)}:${ref.tag}`)
  if (viaMirror) await runtime.untagImage(pulledName)
}

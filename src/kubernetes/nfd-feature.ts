// Keeps kubernetes.nfdFeaturesFile up to date: after every snapshot change or agent event (a
// rollout holding images, a pull, a prune) the labels are built again and the file rewritten
// atomically when its text differs. NFD's worker reads the file and labels the node; nothing here
// talks to the Kubernetes API.
import type { Feature } from '../core/feature.js'
import type { Component } from '../core/lifecycle.js'
import { writeFileAtomic } from '../state/atomic.js'
import { buildNfdLabels, renderNfdFile } from './nfd-labels.js'

export const nfdFeature: Feature = (ctx) => {
  const file = ctx.config.kubernetes.nfdFeaturesFile
  if (file === null) return { components: [] }
  const { store, bus, log, wanted } = ctx
  let written: string | null = null
  let queued = false
  let failing = false
  let stopped = true
  const unsubscribe: (() => void)[] = []

  const refresh = () => {
    queued = false
    if (stopped) return
    const snapshot = store.get()
    const text = renderNfdFile(
      buildNfdLabels({
        prefix: ctx.config.kubernetes.labelPrefix,
        gpu: snapshot.gpu,
        wanted: wanted.refs(),
        images: snapshot.images,
      }),
    )
    if (text === written) return
    try {
      // NFD's worker reads the file as its own user: world-readable, as features.d files are
      writeFileAtomic(file, text, 0o644)
      written = text
      if (failing) log.info({ file }, 'node feature file written again')
      failing = false
    } catch (err) {
      if (!failing) log.error({ file, err: (err as Error).message }, 'cannot write the node feature file')
      failing = true
    }
  }
  // Many changes arrive together (a collection sets several parts): one rewrite per turn of the loop.
  const schedule = () => {
    if (queued || stopped) return
    queued = true
    setImmediate(refresh)
  }

  const component: Component = {
    name: 'nfd-features-file',
    async start() {
      stopped = false
      store.on('change', schedule)
      unsubscribe.push(() => store.off('change', schedule))
      unsubscribe.push(bus.subscribe(schedule))
      refresh()
    },
    async stop() {
      stopped = true
      for (const undo of unsubscribe.splice(0)) undo()
    },
  }
  return { components: [component] }
}

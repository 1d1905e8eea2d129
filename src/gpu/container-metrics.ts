// gpuhost_container_gpu_memory_bytes{container,image,gpu}: GPU memory held by each container, from
// nvidia-smi's processes mapped to containers (containers.ts). Only containers that hold GPU memory
// get a series, so the label set stays as small as the GPU work on the host. The container's name
// and image come from the image inventory; a container it does not know yet shows its short id.
import { Gauge, type Registry } from 'prom-client'
import type { HostSnapshot } from '../core/snapshot.js'

export function registerContainerGpuMetrics(snapshot: () => HostSnapshot, reg: Registry[]): void {
  new Gauge({
    name: 'gpuhost_container_gpu_memory_bytes',
    help: 'GPU memory used by the processes of a container, per GPU (nvidia-smi processes, /proc/PID/cgroup)',
    labelNames: ['container', 'image', 'gpu'],
    registers: reg,
    collect() {
      this.reset()
      const s = snapshot()
      // the container index is built only when some GPU process runs in a container
      if (!s.gpu.gpus.some((g) => g.processes?.some((p) => p.containerId !== undefined))) return
      const known = new Map<string, { name: string; image: string }>()
      for (const image of s.images ?? []) {
        const ref = image.repoTags[0] ?? image.id
        for (const c of image.containers) known.set(c.id, { name: c.name.replace(/^\//, ''), image: ref })
      }
      const totals = new Map<string, { labels: { container: string; image: string; gpu: string }; bytes: number }>()
      for (const g of s.gpu.gpus) {
        for (const p of g.processes ?? []) {
          if (p.containerId === undefined || p.usedMemoryBytes === undefined) continue
          const c = known.get(p.containerId) ?? { name: p.containerId.slice(0, 12), image: '' }
          const key = `${p.containerId}/${g.index}`
          const entry = totals.get(key) ?? {
            labels: { container: c.name, image: c.image, gpu: String(g.index) },
            bytes: 0,
          }
          entry.bytes += p.usedMemoryBytes
          totals.set(key, entry)
        }
      }
      for (const { labels, bytes } of totals.values()) this.set(labels, bytes)
    },
  })
}

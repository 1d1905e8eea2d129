// Node labels for Node Feature Discovery's local source (a features.d file of `key=value` lines):
// what the driver offers and, for each wanted image, whether this host can run it and holds it.
// Pure: the facts in, the labels and the file's text out. Image references are far longer than a
// label name allows (63 characters) and hold characters labels do not, so each image is named by
// the first 16 hex digits of the SHA-256 of its docker.io-qualified reference; the file lists the
// mapping in comment lines, and `printf %s REF | sha256sum | cut -c1-16` computes it.
import { createHash } from 'node:crypto'
import type { GpuFacts, ImageCompat, ImageFacts } from '../core/snapshot.js'
import { judgeHost } from '../gpu/health.js'
import { driverFacts } from '../compat/check.js'
import { isWanted, wantedSet } from '../registry/image-names.js'
import { qualifiedRef } from '../registry/reference.js'
import type { Labels } from '../labels.js'

export interface NfdInput {
  /** a DNS subdomain, e.g. gpuhost.io */
  prefix: string
  gpu: GpuFacts
  /** the wanted set's references, configured first */
  wanted: string[]
  /** the local images; null before the image collector has run (presence then unknown) */
  images: readonly ImageFacts[] | null
}

export interface NfdImageEntry {
  ref: string
  id: string
}

/** the label name part that stands for an image reference */
export function imageLabelId(ref: string): string {
  return createHash('sha256').update(qualifiedRef(ref)).digest('hex').slice(0, 16)
}

/** Kubernetes label values: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends; else "" */
export function labelValue(text: string): string {
  const cleaned = text
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '')
  return cleaned
}

export function buildNfdLabels(input: NfdInput): { labels: Labels; images: NfdImageEntry[] } {
  const p = `${input.prefix}/`
  const labels: Labels = {}
  const set = (key: string, value: string | undefined) => {
    if (value !== undefined && value !== '') labels[p + key] = value
  }
  const { gpu } = input
  set('gpu.available', String(gpu.available))
  if (gpu.available) {
    set('driver.version', labelValue(gpu.driverVersion ?? ''))
    set('driver.major', /^(\d+)/.exec(gpu.driverVersion ?? '')?.[1])
    const cuda = driverFacts(gpu).cudaVersion
    set('cuda.max', cuda && labelValue(cuda))
    set('cuda.max.major', /^(\d+)/.exec(cuda ?? '')?.[1])
    set('gpu.count', String(gpu.gpus.length))
    const products = [...new Set(gpu.gpus.map((g) => g.name).filter(Boolean))]
    set('gpu.product', products.length === 1 ? labelValue(products[0]) : products.length > 1 ? 'mixed' : undefined)
    for (const cc of new Set(gpu.gpus.map((g) => g.computeCapability).filter(Boolean)))
      if (/^\d+\.\d+$/.test(cc!)) set(`compute.${cc}`, 'true')
    const majors = gpu.gpus.map((g) => /^(\d+)\./.exec(g.computeCapability ?? '')?.[1]).filter(Boolean)
    // the lowest major across GPUs: a pod may land on any of them
    if (majors.length === gpu.gpus.length && majors.length > 0)
      set('compute.major.min', String(Math.min(...majors.map(Number))))
  }
  set('health', judgeHost(gpu).state)
  const images: NfdImageEntry[] = []
  const seen = new Set<string>()
  for (const ref of input.wanted) {
    const id = imageLabelId(ref)
    if (seen.has(id)) continue
    seen.add(id)
    images.push({ ref: qualifiedRef(ref), id })
    const local = input.images?.find((image) => isWanted(image, wantedSet([ref])))
    const compat: ImageCompat | undefined = local?.compat
    set(`image.${id}.present`, input.images === null ? 'unknown' : String(local !== undefined))
    set(`image.${id}.compatible`, compat?.compatible == null ? 'unknown' : String(compat.compatible))
    set(`image.${id}.kernels`, compat?.kernels ?? 'unknown')
  }
  return { labels, images }
}

/** the features.d file: a header, the image mapping as comments, then sorted `key=value` lines */
export function renderNfdFile(built: { labels: Labels; images: NfdImageEntry[] }): string {
  const lines = ['# Written by gpuhost; rewritten whenever a value changes. Image ids: sha256(reference)[0:16].']
  // A reference is validated where it comes in; control characters are still dropped here, since a
  // line break in a comment would start a label line of its own.
  // eslint-disable-next-line no-control-regex
  for (const { id, ref } of built.images) lines.push(`# image ${id} ${ref.replace(/[\u0000-\u001f\u007f]/g, '')}`)
  for (const key of Object.keys(built.labels).sort()) lines.push(`${key}=${built.labels[key]}`)
  return lines.join('\n') + '\n'
}

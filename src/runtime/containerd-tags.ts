// Names and labels on containerd's image records: a tag put on or taken off as `docker tag` and
// `docker rmi NAME` would, and the CRI pin label set on the wanted images (and taken off those gpuhost
// pinned once they are no longer wanted), so the kubelet's image GC leaves them alone.
import { familiarRef } from '../registry/reference.js'
import { isNotFound } from './containerd-client.js'
import { containerdName, PINNED_BY_LABEL, PINNED_LABEL, type ImageRecord } from './containerd-images.js'
import { findImage, type ContainerdAccess } from './containerd-view.js'

export async function tagImage(access: ContainerdAccess, source: string, target: string): Promise<void> {
  const view = await access.view()
  const image = findImage(view, source)
  if (!image) throw Object.assign(new Error(`no such image: ${source}`), { statusCode: 404 })
  const record = image.records[0]!
  const name = containerdName(target)
  // CRI names a pulled image by tag and by `repo@digest`: a name put on keeps the pair whole.
  const digestName = `${name.replace(/:[^:/]*$/, '')}@${record.target.digest}`
  for (const n of [name, digestName]) await putName(access, n, record)
}

export async function untagImage(access: ContainerdAccess, ref: string): Promise<void> {
  const view = await access.view()
  const image = findImage(view, ref)
  const wanted = familiarRef(ref)
  const record = image?.records.find((r) => familiarRef(r.name) === wanted)
  if (!image || !record) throw Object.assign(new Error(`no such image: ${ref}`), { statusCode: 404 })
  const repo = (n: string) => n.replace(/[@:][^/]*$/, '')
  // The repository's digest names go with its last tag, as they came with it; never the last name.
  const others = image.records.filter((r) => r !== record && repo(r.name) === repo(record.name))
  const digestNames = others.every((r) => r.name.includes('@')) ? others : []
  const going = [record, ...digestNames]
  if (image.records.filter((r) => !r.name.startsWith('sha256:')).length <= going.length) {
    throw new Error(`${ref} is the image's only name: removing it is a removal`)
  }
  for (const r of going) await access.call(() => access.client.call('images', 'Delete', { name: r.name, sync: false }))
}

async function putName(access: ContainerdAccess, name: string, record: ImageRecord): Promise<void> {
  const image = { name, labels: record.labels, target: record.target }
  await access
    .call(() => access.client.call('images', 'Create', { image }))
    .catch((err) => {
      // Already there (on this or another image): point it here, as `docker tag` moves a name.
      if ((err as { code?: number }).code !== 6) throw err
      return access.call(() => access.client.call('images', 'Update', { image, updateMask: { paths: ['target'] } }))
    })
}

/** pins the images `refs` name and unpins those gpuhost pinned that they no longer name */
export async function pinWanted(
  access: ContainerdAccess,
  refs: string[],
): Promise<{ pinned: string[]; unpinned: string[] }> {
  const view = await access.view()
  const wanted = new Set(refs.map((r) => familiarRef(r)))
  const out = { pinned: [] as string[], unpinned: [] as string[] }
  for (const image of view.images) {
    const isWanted = image.records.some((r) => wanted.has(familiarRef(r.name)))
    const ours = image.records.filter((r) => r.labels[PINNED_BY_LABEL])
    if (isWanted) {
      const unpinned = image.records.filter((r) => r.labels[PINNED_LABEL] !== 'pinned')
      for (const r of unpinned)
        await setLabels(access, r.name, { [PINNED_LABEL]: 'pinned', [PINNED_BY_LABEL]: 'wanted' })
      if (unpinned.length > 0) out.pinned.push(image.id)
    } else if (ours.length > 0) {
      for (const r of ours) await setLabels(access, r.name, { [PINNED_LABEL]: '', [PINNED_BY_LABEL]: '' })
      out.unpinned.push(image.id)
    }
  }
  return out
}

/** sets (or, with an empty value, removes) labels on one image record, leaving its others */
async function setLabels(access: ContainerdAccess, name: string, labels: Record<string, string>): Promise<void> {
  await access
    .call(() =>
      access.client.call('images', 'Update', {
        image: { name, labels: Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== '')) },
        updateMask: { paths: Object.keys(labels).map((k) => `labels.${k}`) },
      }),
    )
    .catch((err) => {
      if (!isNotFound(err)) throw err // the name went meanwhile: nothing to pin
    })
}

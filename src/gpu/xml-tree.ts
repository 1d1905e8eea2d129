// nvidia-smi's XML read into plain objects with saxes, a strict streaming XML parser: it stops at
// the first well-formedness error (a truncated document, a tag closed out of order), so no separate
// validation pass is needed, and the tree holds only elements, attributes and trimmed text.
// The shape is the one parse.ts walks: an element with only text is its text (`''` when empty); an
// element with children or attributes is an object (attributes as `@_name`, text beside children as
// `#text`); a name repeated under one parent, or listed in `arrays`, is an array.
import { createRequire } from 'node:module'
import type { SaxesParser as SaxesParserType } from 'saxes'

// Loaded at the first parse, synchronously (parsing is synchronous): a host without a GPU never does.
let Saxes: typeof SaxesParserType | null = null
function saxesParser(): typeof SaxesParserType {
  Saxes ??= (createRequire(import.meta.url)('saxes') as { SaxesParser: typeof SaxesParserType }).SaxesParser
  return Saxes
}

export type XmlNode = { [name: string]: XmlValue }
export type XmlValue = string | XmlNode | XmlValue[]

interface Open {
  name: string
  node: XmlNode
  text: string
  children: boolean
}

export class XmlTreeError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'XmlTreeError'
  }
}

export function parseXmlTree(xml: string, arrays: ReadonlySet<string> = new Set()): XmlNode {
  const root: Open = { name: '', node: {}, text: '', children: false }
  const stack: Open[] = [root]
  const parser = new (saxesParser())({ position: true })
  let failure: Error | null = null
  parser.on('error', (err) => {
    failure ??= err
  })
  parser.on('opentag', (tag) => {
    const node: XmlNode = {}
    for (const [k, v] of Object.entries(tag.attributes)) node[`@_${k}`] = v as string
    stack[stack.length - 1].children = true
    stack.push({ name: tag.name, node, text: '', children: false })
  })
  parser.on('text', (text) => {
    stack[stack.length - 1].text += text
  })
  parser.on('cdata', (text) => {
    stack[stack.length - 1].text += text
  })
  parser.on('closetag', () => {
    const done = stack.pop()!
    const parent = stack[stack.length - 1].node
    const text = done.text.trim()
    let value: XmlValue
    if (!done.children && Object.keys(done.node).length === 0) value = text
    else {
      if (text !== '') done.node['#text'] = text
      value = done.node
    }
    const existing = parent[done.name]
    if (existing === undefined) parent[done.name] = arrays.has(done.name) ? [value] : value
    // Values are strings and objects: an array here is one this loop made for the name.
    else if (Array.isArray(existing)) existing.push(value)
    else parent[done.name] = [existing, value]
  })
  try {
    parser.write(xml).close()
  } catch (err) {
    failure ??= err as Error
  }
  if (failure) throw new XmlTreeError((failure as Error).message)
  return root.node
}

// The streaming XML reader against the full-tree parser the agent used before it, on every real
// capture: the trees parse.ts walks are equal (so every GpuFacts is), whole documents and with the
// unread supported-clocks tables cut out; and malformed documents are errors with their line.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { XMLParser } from 'fast-xml-parser'
import { LIST_ELEMENTS, withoutUnreadSections } from '../../src/gpu/parse.js'
import { parseXmlTree, XmlTreeError } from '../../src/gpu/xml-tree.js'

const XML = new URL('../fixtures/nvidia-smi/xml/', import.meta.url)
const captures = readdirSync(XML).filter((f) => f.endsWith('.xml'))

// fast-xml-parser as parse.ts configured it: the reference the streaming reader must equal.
const reference = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  isArray: (name) => LIST_ELEMENTS.has(name),
})

t.test('the same tree as the full parser on every capture', async (t) => {
  t.ok(captures.length >= 10)
  for (const file of captures) {
    const xml = readFileSync(new URL(file, XML), 'utf8')
    for (const [label, doc] of [
      ['whole', xml],
      ['cut', withoutUnreadSections(xml)],
    ] as const) {
      const expected = reference.parse(doc).nvidia_smi_log
      t.same(parseXmlTree(doc, LIST_ELEMENTS).nvidia_smi_log, expected, `${file} (${label})`)
    }
  }
})

t.test('cutting the supported-clocks tables keeps every other byte and every line number', async (t) => {
  const file = captures.find((f) => f.startsWith('rtx-a5000'))!
  const xml = readFileSync(new URL(file, XML), 'utf8')
  const cut = withoutUnreadSections(xml)
  t.ok(cut.length < xml.length / 2, `${xml.length} → ${cut.length} bytes`)
  t.notMatch(cut, /supported_graphics_clock/)
  t.equal(cut.split('\n').length, xml.split('\n').length, 'line numbers kept')
  t.equal(
    cut.replace(/\n\s*/g, ''),
    xml.replace(/<supported_clocks>[\s\S]*?<\/supported_clocks>/g, '').replace(/\n\s*/g, ''),
  )
  const open = xml.slice(0, xml.indexOf('</supported_clocks>'))
  t.equal(withoutUnreadSections(open), open, 'a table left open is not cut: the parse reports it')
})

t.test('malformed documents are errors that name the line', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /root/],
    ['<a><b></a>', /1:\d+/],
    ['<nvidia_smi_log>\n<gpu id="0">\n<product_name>x</gpu>', /3:\d+/],
    ['text before <a/>', /\d+:\d+/],
    ['<a>&undefined;</a>', /undefined/],
  ]
  for (const [doc, message] of cases) t.throws(() => parseXmlTree(doc), { name: 'XmlTreeError', message }, doc)
  t.type(XmlTreeError, 'function')
})

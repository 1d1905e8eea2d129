// The shape of src/ in figures: size of files, import circles, and imports that run back up into the
// composition root. Run with `npm run -s arch` (`--json` for the figures as JSON).
//
// Imports are read with the TypeScript compiler's own pre-processor (ts.preProcessFile), which sees
// `import … from`, `export … from`, `import type` and dynamic `import('…')` alike; a regex would miss
// or invent some. Relative specifiers are resolved the way NodeNext does for this tree: `x.js` names
// `x.ts`, and a folder names its `index.ts`. Package imports are not part of the graph.
//
// Import circles are the strongly connected components of more than one file, type-only imports
// included: a type-only cycle still ties the files together for a reader and for the next change.
//
// Back-up imports: `src/agent/` is the composition root (which features, how they are wired, the
// agent's own metrics, status, readiness, lifecycle). Anything outside it that imports from it runs
// against the direction of composition. The exceptions are `src/cli.ts` and `src/commands/*`, which
// compose the process themselves (the agent command builds an Agent from its features); every other
// file in src/ that imports a file under src/agent/ counts once per import.
//
// Core imports: `src/core/` holds the contracts features share; it may import the shared modules at
// the top of src/ (protocol, errors, config) but no feature folder. Each import from src/core/ into
// another folder of src/ is listed, type-only ones included.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs'
import { join, relative, dirname, resolve, sep } from 'node:path'
import ts from 'typescript'

const LONG_FILE_LINES = 350
const root = resolve(dirname(new URL(import.meta.url).pathname), '..')
const srcDir = join(root, 'src')

function listTs(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...listTs(path))
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

/** the file a relative specifier names, or null when it names none in the tree */
function resolveSpecifier(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null
  const base = resolve(dirname(from), spec)
  const candidates = [
    base.replace(/\.js$/, '.ts'),
    base.replace(/\.mjs$/, '.mts'),
    base,
    `${base}.ts`,
    join(base, 'index.ts'),
  ]
  for (const c of candidates) if (existsSync(c) && statSync(c).isFile()) return c
  return null
}

interface Edge {
  from: string
  to: string
}

const rel = (p: string) => relative(root, p).split(sep).join('/')

const files = listTs(srcDir)
const lines = new Map<string, number>()
const edges: Edge[] = []
const unresolved: string[] = []
for (const file of files) {
  const text = readFileSync(file, 'utf8')
  lines.set(file, text.split('\n').length - (text.endsWith('\n') ? 1 : 0))
  const info = ts.preProcessFile(text, true, true)
  for (const ref of info.importedFiles) {
    if (!ref.fileName.startsWith('.')) continue
    const to = resolveSpecifier(file, ref.fileName)
    if (to === null) unresolved.push(`${rel(file)} → ${ref.fileName}`)
    else edges.push({ from: file, to })
  }
}

// Tarjan's strongly connected components, iterative enough for a tree of a few hundred files.
function stronglyConnected(nodes: string[], next: Map<string, Set<string>>): string[][] {
  let index = 0
  const indices = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: string[] = []
  const out: string[][] = []
  const visit = (v: string): void => {
    indices.set(v, index)
    low.set(v, index)
    index++
    stack.push(v)
    onStack.add(v)
    for (const w of next.get(v) ?? []) {
      if (!indices.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indices.get(w)!))
    }
    if (low.get(v) === indices.get(v)) {
      const scc: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        scc.push(w)
      } while (w !== v)
      out.push(scc)
    }
  }
  for (const v of nodes) if (!indices.has(v)) visit(v)
  return out
}

const next = new Map<string, Set<string>>()
for (const e of edges) {
  if (!next.has(e.from)) next.set(e.from, new Set())
  next.get(e.from)!.add(e.to)
}
const circles = stronglyConnected(files, next)
  .filter((scc) => scc.length > 1)
  .map((scc) => scc.map(rel).sort())
  .sort((a, b) => b.length - a.length)

const agentDir = join(srcDir, 'agent') + sep
const composes = (file: string) => file === join(srcDir, 'cli.ts') || file.startsWith(join(srcDir, 'commands') + sep)
const backUp = edges
  .filter((e) => !e.from.startsWith(agentDir) && !composes(e.from) && e.to.startsWith(agentDir))
  .map((e) => `${rel(e.from)} → ${rel(e.to)}`)

const coreDir = join(srcDir, 'core') + sep
const inFolder = (file: string) => dirname(file) !== srcDir
const coreImports = edges
  .filter((e) => e.from.startsWith(coreDir) && !e.to.startsWith(coreDir) && inFolder(e.to))
  .map((e) => `${rel(e.from)} → ${rel(e.to)}`)

const sizes = files.map((f) => ({ file: rel(f), lines: lines.get(f)! })).sort((a, b) => a.lines - b.lines)
const mid = Math.floor(sizes.length / 2)
const median =
  sizes.length === 0 ? 0 : sizes.length % 2 ? sizes[mid]!.lines : (sizes[mid - 1]!.lines + sizes[mid]!.lines) / 2
const largest = sizes[sizes.length - 1]
const figures = {
  files: files.length,
  lines: sizes.reduce((sum, s) => sum + s.lines, 0),
  medianLines: median,
  maxLines: largest ?? null,
  over350: sizes.filter((s) => s.lines > LONG_FILE_LINES).reverse(),
  imports: edges.length,
  circles: circles.map((members) => ({ size: members.length, members })),
  backUpImports: { count: backUp.length, imports: backUp },
  coreImportsOfFeatures: { count: coreImports.length, imports: coreImports },
  unresolved,
}

if (process.argv.includes('--json')) {
  console.log(JSON.stringify(figures, null, 2))
} else {
  console.log(`files: ${figures.files}`)
  console.log(`lines: ${figures.lines}`)
  console.log(`median lines per file: ${figures.medianLines}`)
  console.log(`max lines: ${largest ? `${largest.lines} (${largest.file})` : '-'}`)
  console.log(`files over ${LONG_FILE_LINES} lines: ${figures.over350.length}`)
  for (const s of figures.over350) console.log(`  ${s.lines} ${s.file}`)
  console.log(`relative imports: ${figures.imports}`)
  console.log(`import circles: ${circles.length}`)
  for (const [i, members] of circles.entries()) {
    console.log(`  circle ${i + 1} (${members.length} files):`)
    for (const m of members) console.log(`    ${m}`)
  }
  console.log(`back-up imports into src/agent/: ${backUp.length}`)
  for (const b of backUp) console.log(`  ${b}`)
  console.log(`imports from src/core/ into feature folders: ${coreImports.length}`)
  for (const c of coreImports) console.log(`  ${c}`)
  if (unresolved.length) {
    console.log(`unresolved relative imports: ${unresolved.length}`)
    for (const u of unresolved) console.log(`  ${u}`)
  }
}

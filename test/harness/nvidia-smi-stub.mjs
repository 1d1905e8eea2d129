#!/usr/bin/env node
// The body of the stand-in nvidia-smi (see nvidia-smi.ts): answers `-q -x` with a captured XML
// document and `--query-gpu=F1,F2,… --format=csv[,noheader][,nounits]` with the columns of a
// captured CSV (one taken with a header row), in the order asked. A field the capture lacks is
// answered as nvidia-smi answers a field its driver does not know. Plain JS: it runs as a program.
import { readFileSync } from 'node:fs'
import process from 'node:process'

const xml = process.env.GH_SMI_XML
const csv = process.env.GH_SMI_CSV
const args = process.argv.slice(2)
const query = args.find((a) => a.startsWith('--query-gpu='))

if (args[0] === '-q' && args[1] === '-x' && xml) {
  process.stdout.write(readFileSync(xml))
} else if (query) {
  answerQuery(query.slice('--query-gpu='.length).split(','), args.find((a) => a.startsWith('--format=')) ?? '')
} else {
  process.stderr.write(`stand-in nvidia-smi: no capture answers ${args.join(' ')}\n`)
  process.exit(9)
}

function answerQuery(fields, format) {
  const options = format.slice('--format='.length).split(',')
  if (!options.includes('csv')) {
    process.stdout.write("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n")
    process.exit(2)
  }
  if (!csv) {
    process.stderr.write('stand-in nvidia-smi: no --query-gpu capture for this host\n')
    process.exit(9)
  }
  const lines = readFileSync(csv, 'utf8')
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
  const header = lines[0].split(',').map((c) => c.trim())
  const names = header.map((h) => h.replace(/\s*\[[^\]]*\]$/, ''))
  const columns = fields.map((f) => names.indexOf(f))
  const unknown = fields.find((f, i) => columns[i] < 0)
  if (unknown !== undefined) {
    process.stdout.write(`Field "${unknown}" is not a valid field to query.\n\n`)
    process.exit(2)
  }
  const noUnits = options.includes('nounits')
  const out = []
  if (!options.includes('noheader')) out.push(columns.map((c) => (noUnits ? names[c] : header[c])).join(', '))
  for (const line of lines.slice(1)) {
    const cells = line.split(',').map((c) => c.trim())
    out.push(columns.map((c) => (noUnits ? cells[c].replace(/\s+(MiB|W|MHz|%|us|C|s)$/, '') : cells[c])).join(', '))
  }
  process.stdout.write(out.join('\n') + '\n')
}

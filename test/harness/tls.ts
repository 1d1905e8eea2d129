// Certificates made by openssl at test time (EC P-256, valid one day): a CA, and certificates it
// issues for a subject and its subjectAltName. The TLS tests of the coordinator, peers and nodeFetch
// share it.
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${r.stderr}`)
}

export interface TestCa {
  caFile: string
  ca: Buffer
  /** a certificate this CA signs for `subject` (e.g. /CN=gpu-a) with `san` (e.g. IP:127.0.0.1) */
  issue(name: string, subject: string, san: string): { certFile: string; keyFile: string }
}

/** a CA in `dir`, its files named ca.pem and ca.key */
export function makeTestCa(dir: string, subject = '/CN=gpuhost test CA'): TestCa {
  const p = (name: string) => join(dir, name)
  openssl(['req', '-x509', ...KEY, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '1', '-subj', subject])
  return {
    caFile: p('ca.pem'),
    ca: readFileSync(p('ca.pem')),
    issue(name, subject, san) {
      openssl(['req', ...KEY, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', subject])
      writeFileSync(p(`${name}.ext`), `subjectAltName=${san}\n`)
      openssl(
        ['x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.pem'), '-CAkey', p('ca.key')].concat([
          '-CAcreateserial',
          '-out',
          p(`${name}.pem`),
          '-days',
          '1',
          '-extfile',
          p(`${name}.ext`),
        ]),
      )
      return { certFile: p(`${name}.pem`), keyFile: p(`${name}.key`) }
    },
  }
}

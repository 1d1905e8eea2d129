// An insecure registry over https (its TLS left unchecked, as dockerd treats one) that sends blob
// reads elsewhere, as registries backed by object storage do: the client follows the redirect on the
// registry's own origin, and to another origin only with TLS checked and without the registry's
// credentials. Real https and http servers on loopback; the certificate comes from a test CA.
import t from 'tap'
import { createHash } from 'node:crypto'
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { testDir } from '../harness/agent.js'
import { which } from '../harness/services.js'
import { makeTestCa } from '../harness/tls.js'
import { RegistryClient } from '../../src/registry/client.js'
import { CredentialStore } from '../../src/registry/credentials.js'

const CONFIG = JSON.stringify({ config: { Env: ['CUDA_VERSION=12.2.0'] } })
const CONFIG_DIGEST = 'sha256:' + createHash('sha256').update(CONFIG).digest('hex')
const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: CONFIG.length, digest: CONFIG_DIGEST },
  layers: [],
})
const BASIC = `Basic ${Buffer.from('ops:secret').toString('base64')}`

if (!which('openssl')) {
  t.plan(0, 'skipped: needs openssl to make a certificate')
} else {
  t.test(
    'redirects from an insecure https registry: its own origin unchecked, others checked and without credentials',
    async (t) => {
      const dir = testDir(t)
      const cert = makeTestCa(dir.path).issue('registry', '/CN=registry', 'IP:127.0.0.1')
      const storageSaw: IncomingHttpHeaders[] = []
      const storage = createHttpServer((req, res) => {
        storageSaw.push(req.headers)
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(CONFIG)
      })
      await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r))
      const storageUrl = `http://127.0.0.1:${(storage.address() as AddressInfo).port}`
      const registrySaw: string[] = []
      const registry = createHttpsServer(
        { cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) },
        (req, res) => {
          registrySaw.push(`${req.url} ${req.headers.authorization ? 'auth' : 'anonymous'}`)
          if (req.url === '/moved-config') return void res.writeHead(307, { location: `${storageUrl}/config` }).end()
          if (req.headers.authorization !== BASIC)
            return void res.writeHead(401, { 'www-authenticate': 'Basic realm="registry"' }).end()
          if (req.url === '/v2/team/model/manifests/1')
            return void res
              .writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' })
              .end(MANIFEST)
          if (req.url === `/v2/team/model/blobs/${CONFIG_DIGEST}`)
            return void res.writeHead(307, { location: '/moved-config' }).end()
          res.writeHead(404).end()
        },
      )
      await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r))
      t.teardown(() => {
        registry.closeAllConnections()
        registry.close()
        storage.closeAllConnections()
        storage.close()
      })
      const domain = `127.0.0.1:${(registry.address() as AddressInfo).port}`

      const client = new RegistryClient({
        credentials: CredentialStore.fromMap(new Map([[domain, { username: 'ops', password: 'secret' }]])),
      })
      t.teardown(() => client.close())
      const image = await client.inspectRemote(`${domain}/team/model:1`)
      t.equal(image.configDigest, CONFIG_DIGEST)
      t.same(image.env, ['CUDA_VERSION=12.2.0'], 'the config came through both redirects')
      t.ok(registrySaw.includes('/moved-config auth'), 'the hop on the registry’s own origin keeps its credentials')
      t.equal(storageSaw.length, 1, 'the other origin was reached once')
      t.equal(storageSaw[0].authorization, undefined, 'without the registry’s credentials')
    },
  )
}

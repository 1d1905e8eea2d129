// A token server for docker-registry's token authentication (docker/distribution's token
// specification): it checks Basic credentials and signs a JWT with a self-signed certificate
// that the registry trusts through its rootcertbundle and the token's x5c header.
import { createServer, type Server } from 'node:http'
import { createSign, X509Certificate } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.js'

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

export interface TokenServer {
  realm: string
  service: string
  issuer: string
  certFile: string
  /** config lines that make a registry ask this server for tokens */
  registryConfig: string[]
  /** how many token requests came, and with which user ('' for anonymous) */
  requests: { user: string; scope: string }[]
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url')

export async function startTokenServer(t: Teardown, users: Record<string, string>): Promise<TokenServer> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-tok-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const keyFile = join(dir, 'key.pem')
  const certFile = join(dir, 'cert.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=gpuhost-test-token',
    ],
    { stdio: 'ignore' },
  )
  const key = readFileSync(keyFile, 'utf8')
  const certDer = new X509Certificate(readFileSync(certFile)).raw
  const service = 'gpuhost-test-registry'
  const issuer = 'gpuhost-test-issuer'
  const requests: TokenServer['requests'] = []

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const scope = url.searchParams.get('scope') ?? ''
    let user = ''
    const auth = req.headers.authorization
    if (auth?.startsWith('Basic ')) {
      const [u, ...p] = Buffer.from(auth.slice(6), 'base64').toString().split(':')
      if (users[u] !== p.join(':')) {
        requests.push({ user: u, scope })
        res.writeHead(401).end('{"details":"wrong credentials"}')
        return
      }
      user = u
    }
    requests.push({ user, scope })
    // Anonymous callers get a token with no access: the registry then answers 401 insufficient_scope.
    const access =
      user && scope
        ? [{ type: scope.split(':')[0], name: scope.split(':')[1], actions: (scope.split(':')[2] ?? '').split(',') }]
        : []
    const now = Math.floor(Date.now() / 1000)
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] }
    const claims = {
      iss: issuer,
      sub: user,
      aud: service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: String(Math.random()),
      access,
    }
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    const signature = createSign('RSA-SHA256').update(input).sign(key)
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token: `${input}.${b64url(signature)}`, expires_in: 300 }))
  })
  const port = await freePort()
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()))
  t.teardown(
    () =>
      new Promise<void>((r) => {
        server.close(() => r())
        server.closeAllConnections()
      }),
  )
  const realm = `http://127.0.0.1:${port}/token`
  return {
    realm,
    service,
    issuer,
    certFile,
    requests,
    registryConfig: [
      'auth:',
      '  token:',
      `    realm: ${realm}`,
      `    service: ${service}`,
      `    issuer: ${issuer}`,
      `    rootcertbundle: ${certFile}`,
    ],
  }
}

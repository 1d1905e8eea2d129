import t from 'tap'
import {
  formatRef,
  familiarName,
  familiarRef,
  onRegistry,
  parseImageRef,
  apiHost,
  qualifiedRef,
} from '../../src/registry/reference.js'
import { CredentialStore, parseDockerConfig, normalizeRegistryKey } from '../../src/registry/credentials.js'
import { DOCKERD_DEFAULT_TRUST, isInsecureRegistry } from '../../src/registry/insecure.js'
import { pickPlatform, type IndexEntry } from '../../src/registry/platform.js'
import { PullProgressTracker } from '../../src/runtime/pull.js'

const DIGEST = `sha256:${'ab'.repeat(32)}`

t.test('references are read as Docker reads them', async (t) => {
  const cases: [string, string, string, string | null, string | null][] = [
    ['ubuntu', 'docker.io', 'library/ubuntu', 'latest', null],
    ['ubuntu:22.04', 'docker.io', 'library/ubuntu', '22.04', null],
    ['tensorflow/tensorflow:2.13.0-gpu-jupyter', 'docker.io', 'tensorflow/tensorflow', '2.13.0-gpu-jupyter', null],
    ['docker.io/library/ubuntu:22.04', 'docker.io', 'library/ubuntu', '22.04', null],
    [
      'index.docker.io/nvidia/cuda:12.2.0-base-ubuntu22.04',
      'docker.io',
      'nvidia/cuda',
      '12.2.0-base-ubuntu22.04',
      null,
    ],
    ['nvcr.io/nvidia/pytorch:24.01-py3', 'nvcr.io', 'nvidia/pytorch', '24.01-py3', null],
    ['127.0.0.1:5000/team/app:1', '127.0.0.1:5000', 'team/app', '1', null],
    ['localhost/app', 'localhost', 'app', 'latest', null],
    [`ubuntu@${DIGEST}`, 'docker.io', 'library/ubuntu', null, DIGEST],
    [`registry.example.com:443/a/b/c:v1@${DIGEST}`, 'registry.example.com:443', 'a/b/c', 'v1', DIGEST],
  ]
  for (const [ref, domain, repository, tag, digest] of cases) {
    t.same(parseImageRef(ref), { original: ref, domain, repository, tag, digest }, ref)
  }
  t.throws(() => parseImageRef('Ubuntu'), /invalid image reference "Ubuntu": .*lowercase/)
  t.throws(() => parseImageRef('a:b:c'), /invalid image reference/)
  t.throws(() => parseImageRef(''), /invalid image reference/)
  t.equal(apiHost('docker.io'), 'registry-1.docker.io')
  t.equal(familiarName('docker.io', 'library/ubuntu'), 'ubuntu')
  t.equal(familiarName('docker.io', 'nvidia/cuda'), 'nvidia/cuda')
  t.equal(formatRef(parseImageRef('docker.io/library/ubuntu')), 'ubuntu:latest')
  t.equal(
    onRegistry(parseImageRef('ubuntu:22.04'), 'mirror.internal:5000').original,
    'mirror.internal:5000/library/ubuntu:22.04',
    'a mirror of Docker Hub keeps library/',
  )
})

t.test('one spelling to compare references by, and one fully qualified', async (t) => {
  const digest = `sha256:${'c'.repeat(64)}`
  t.equal(familiarRef('docker.io/library/ubuntu'), 'ubuntu:latest')
  t.equal(familiarRef('index.docker.io/library/ubuntu:22.04'), 'ubuntu:22.04', "Docker Hub's old name is docker.io")
  t.equal(familiarRef(`nvcr.io/nvidia/cuda@${digest}`), `nvcr.io/nvidia/cuda@${digest}`, 'a digest gets no tag')
  t.equal(familiarRef('c'.repeat(64)), digest, 'an image id')
  t.equal(familiarRef(' Not A Ref '), 'Not A Ref', 'what is not a reference matches only itself')
  t.equal(qualifiedRef('ubuntu'), 'docker.io/library/ubuntu', 'a repository stays a repository')
  t.equal(qualifiedRef('team/app:1'), 'docker.io/team/app:1')
  t.equal(qualifiedRef('localhost:5000/x:2'), 'localhost:5000/x:2')
  t.equal(qualifiedRef('<none>:<none>'), '<none>:<none>')
})

t.test("Docker's config.json: auth, username/password, identity tokens, Hub aliases", async (t) => {
  const creds = parseDockerConfig(
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
        'nvcr.io': { username: '$oauthtoken', password: 'nvapi-x' },
        'https://registry.example.com:5000/v2/': { identitytoken: 'refresh-me' },
        'empty.example.com': {},
      },
      credsStore: 'desktop',
    }),
  )
  t.same(creds.get('docker.io'), { username: 'hubuser', password: 'hub:pass' }, 'the password may hold a colon')
  t.same(creds.get('nvcr.io'), { username: '$oauthtoken', password: 'nvapi-x' })
  t.same(creds.get('registry.example.com:5000'), { identityToken: 'refresh-me' })
  t.notOk(creds.has('empty.example.com'))
  t.equal(normalizeRegistryKey('registry-1.docker.io'), 'docker.io')
  const store = CredentialStore.fromMap(creds)
  t.same(store.dockerAuth('nvcr.io'), { username: '$oauthtoken', password: 'nvapi-x', serveraddress: 'nvcr.io' })
  t.equal(store.dockerAuth('quay.io'), undefined)
  t.throws(() => parseDockerConfig('{', 'creds.json'), /creds\.json is not valid JSON/)
  t.throws(() => parseDockerConfig('{"auths": []}', 'creds.json'), /not in Docker's config\.json format: auths/)
})

t.test('plain HTTP only where dockerd allows it', async (t) => {
  const noDns = async () => {
    throw new Error('no DNS in this test')
  }
  t.ok(await isInsecureRegistry('127.0.0.1:5000', DOCKERD_DEFAULT_TRUST, noDns), 'loopback')
  t.ok(await isInsecureRegistry('[::1]:5000', DOCKERD_DEFAULT_TRUST, noDns), 'IPv6 loopback')
  t.notOk(
    await isInsecureRegistry('10.0.0.5:5000', DOCKERD_DEFAULT_TRUST, noDns),
    'a private address is not insecure by default',
  )
  t.notOk(await isInsecureRegistry('registry.example.com', DOCKERD_DEFAULT_TRUST, noDns), 'an unresolvable name is not')
  const resolveTo = (ip: string) => async () => [ip]
  t.ok(
    await isInsecureRegistry('localhost:5000', DOCKERD_DEFAULT_TRUST, resolveTo('127.0.0.1')),
    'a name that resolves to loopback',
  )
  const trust = {
    InsecureRegistryCIDRs: ['127.0.0.0/8', '10.20.0.0/16'],
    IndexConfigs: {
      'docker.io': { Secure: true },
      'reg.lab:5000': { Secure: false },
      '127.0.0.1:6000': { Secure: true },
    },
  }
  t.ok(await isInsecureRegistry('10.20.3.4:5000', trust, noDns), 'inside an insecure-registries CIDR')
  t.ok(await isInsecureRegistry('reg.lab:5000', trust, noDns), 'named in insecure-registries')
  t.notOk(await isInsecureRegistry('127.0.0.1:6000', trust, noDns), 'an index config marked secure wins over the CIDR')
  t.notOk(await isInsecureRegistry('docker.io', trust, resolveTo('127.0.0.1')))
})

t.test('platform choice in a manifest list', async (t) => {
  const entries: IndexEntry[] = [
    { digest: 'sha256:arm', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { digest: 'sha256:att', platform: { os: 'unknown', architecture: 'unknown' } },
    { digest: 'sha256:amd', platform: { os: 'linux', architecture: 'amd64' } },
    { digest: 'sha256:arm64', platform: { os: 'linux', architecture: 'arm64' } },
    { digest: 'sha256:win', platform: { os: 'windows', architecture: 'amd64' } },
  ]
  t.equal(pickPlatform(entries, { os: 'linux', architecture: 'amd64' })?.digest, 'sha256:amd')
  t.equal(
    pickPlatform(entries, { os: 'linux', architecture: 'arm64', variant: 'v8' })?.digest,
    'sha256:arm64',
    'arm64 without a variant is v8',
  )
  t.equal(pickPlatform(entries, { os: 'linux', architecture: 'arm', variant: 'v6' }), null)
  t.equal(pickPlatform(entries, { os: 'linux', architecture: 's390x' }), null)
})

t.test('pull progress from a real dockerd pull stream', async (t) => {
  const layers = [
    { digest: 'sha256:5b1e5d9f0a61aaaa', sizeBytes: 1000 },
    { digest: 'sha256:9c2f00d0e1b2bbbb', sizeBytes: 3000 },
  ]
  const p = new PullProgressTracker(layers, 4000)
  const events = [
    { status: 'Pulling from team/app', id: '1' },
    { status: 'Pulling fs layer', progressDetail: {}, id: '5b1e5d9f0a61' },
    { status: 'Already exists', progressDetail: {}, id: '5b1e5d9f0a61' },
    { status: 'Downloading', progressDetail: { current: 1200, total: 3000 }, id: '9c2f00d0e1b2' },
  ]
  for (const e of events) p.update(e)
  t.same(p.get(), { bytesDone: 2200, bytesTotal: 4000 })
  p.update({ status: 'Downloading', progressDetail: { current: 99999, total: 3000 }, id: '9c2f00d0e1b2' })
  t.same(p.get(), { bytesDone: 4000, bytesTotal: 4000 }, 'never past the layer size')
  p.update({ status: 'Pull complete', progressDetail: {}, id: '9c2f00d0e1b2' })
  p.update({ status: 'Digest: sha256:…' })
  t.same(p.get(), { bytesDone: 4000, bytesTotal: 4000 })
})

t.test('mirror keys and hosts as people write them', async (t) => {
  const { RegistryClient } = await import('../../src/registry/client.js')
  const client = new RegistryClient({
    mirrors: {
      'index.docker.io': ['https://mirror.internal:5000/', 'hub-cache.internal'],
      'nvcr.io': ['nvcr-cache.internal'],
    },
  })
  t.same(client.sourcesFor('docker.io'), ['mirror.internal:5000', 'hub-cache.internal', 'docker.io'])
  t.same(client.sourcesFor('nvcr.io'), ['nvcr-cache.internal', 'nvcr.io'])
  t.same(client.sourcesFor('quay.io'), ['quay.io'])
  await client.close()
})

t.test('prewarm.images must be image references', async (t) => {
  const { agentConfigSchema, parseConfig } = await import('../../src/config.js')
  t.throws(
    () => parseConfig(agentConfigSchema, { prewarm: { images: ['ok:1', 'Not/Valid:x'] } }),
    /prewarm\.images\.1: not a valid image reference/,
  )
  t.same(
    parseConfig(agentConfigSchema, { prewarm: { images: [`nvcr.io/nvidia/pytorch:24.01-py3`, `x@${DIGEST}`] } }).prewarm
      .images.length,
    2,
  )
})

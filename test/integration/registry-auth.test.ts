// The registry client and the puller against a real docker-registry that uses token
// authentication: the bearer-token flow with Basic credentials from a Docker config.json file.
import t from 'tap'
import { requireServices } from '../harness/services.js'
import { startDockerd } from '../harness/dockerd.js'
import { startRegistry } from '../harness/registry.js'
import { startTokenServer } from '../harness/token-server.js'
import { makeImage } from '../harness/images.js'
import { runCliAsync, testDir } from '../harness/agent.js'
import { freePort } from '../harness/ports.js'
import { stringify } from 'yaml'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { RegistryClient } from '../../src/registry/client.js'
import { CredentialStore } from '../../src/registry/credentials.js'
import { RegistryError } from '../../src/registry/errors.js'

const run = promisify(execFile)
const USER = 'puller'
const PASSWORD = 'S3cret-pa55word-never-logged'

if (requireServices(t, ['dockerd', 'docker', 'docker-registry', 'mkfs'])) {
  t.test('bearer tokens from the registry realm, with credentials from a config.json', async (t) => {
    const tokens = await startTokenServer(t, { [USER]: PASSWORD })
    const registry = await startRegistry(t, { extraConfig: tokens.registryConfig })
    const dockerd = await startDockerd(t, { diskMiB: 128 })
    const dir = testDir(t)
    const credentialsFile = dir.file(
      'config.json',
      JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }),
    )

    const ref = `${registry.host}/team/private:1`
    makeImage(dockerd, { ref, sizeBytes: 1024 * 1024, env: { CUDA_VERSION: '11.8.0' }, labels: { team: 'ml' } })
    // Asynchronously: the token server answering dockerd lives in this process.
    await run('docker', ['-H', dockerd.host, '--config', dir.path, 'push', '--quiet', ref])
    dockerd.docker(['rmi', ref])

    const client = new RegistryClient({ credentials: new CredentialStore(credentialsFile) })
    t.teardown(() => client.close())
    const image = await client.inspectRemote(ref)
    t.equal(image.registry, registry.host)
    t.equal(image.repository, 'team/private')
    t.match(image.digest, /^sha256:[0-9a-f]{64}$/)
    t.ok(image.env.includes('CUDA_VERSION=11.8.0'), 'the config blob was read')
    t.same(image.labels, { team: 'ml' })
    t.ok(image.compressedBytes > 1024 * 1024 * 0.9, `layer sizes summed: ${image.compressedBytes}`)
    t.ok(
      tokens.requests.some((r) => r.user === USER && r.scope === 'repository:team/private:pull'),
      'asked the realm for a pull token as the configured user',
    )

    const anonymous = new RegistryClient()
    t.teardown(() => anonymous.close())
    const denied = await anonymous.inspectRemote(ref).catch((e) => e)
    t.ok(denied instanceof RegistryError && denied.kind === 'unauthorized', `anonymous: ${denied.message}`)
    t.match(denied.message, /access denied .* needs credentials in prewarm\.credentialsFile/)

    const wrong = new RegistryClient({
      credentials: CredentialStore.fromMap(new Map([[registry.host, { username: USER, password: 'nope' }]])),
    })
    t.teardown(() => wrong.close())
    const refused = await wrong.inspectRemote(ref).catch((e) => e)
    t.equal(refused.kind, 'unauthorized')
    t.match(refused.message, /token endpoint refused the credentials/)

    const gone = await client.inspectRemote(`${registry.host}/team/private:nope`).catch((e) => e)
    t.equal(gone.kind, 'not_found')
    t.match(gone.message, /MANIFEST_UNKNOWN/)

    const nobody = await freePort()
    const closed = await new RegistryClient().inspectRemote(`127.0.0.1:${nobody}/team/x:1`).catch((e) => e)
    t.equal(closed.kind, 'unreachable')
    t.match(closed.message, new RegExp(`registry 127\\.0\\.0\\.1:${nobody} unreachable: .*ECONNREFUSED`))

    // The same credentials reach dockerd for the pull itself; none of it shows in the output.
    const config = dir.file(
      'agent.yaml',
      stringify({
        docker: { socket: dockerd.socket },
        stateDir: `${dir.path}/state`,
        tokenFile: null,
        gpu: { nvidiaSmi: '/nonexistent/nvidia-smi', timeoutSeconds: 2 },
        prewarm: { credentialsFile, schedule: null },
        log: { level: 'debug' },
      }),
    )
    const r = await runCliAsync(['--json', 'prewarm', '--config', config, '--image', ref])
    t.equal(r.code, 0, r.stderr)
    t.equal(JSON.parse(r.stdout).results[0].status, 'pulled')
    const b64 = Buffer.from(`${USER}:${PASSWORD}`).toString('base64')
    for (const secret of [PASSWORD, b64])
      t.notOk((r.stdout + r.stderr).includes(secret), 'the credentials are never logged')
  })
}

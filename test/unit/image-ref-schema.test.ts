// Image references are refused where they come in when they are not references Docker would take:
// a line break or a label line must not travel on into the wanted set or the node-label file.
import t from 'tap'
import { isImageRef } from '../../src/image-ref-schema.js'
import { prewarmArgsOrThrow, releaseArgsOrThrow } from '../../src/prewarm/request.js'
import { agentConfigSchema, parseConfig } from '../../src/config.js'

const BAD = ['x\ngpuhost.io/gpu.available=true', ' ubuntu:22.04', 'UPPER/case:1', 'a b:1', '']
const GOOD = ['ubuntu:22.04', 'nvcr.io/nvidia/pytorch:24.01-py3', '127.0.0.1:5000/a/b@sha256:' + 'a'.repeat(64)]

t.test('references Docker would take, and nothing else', async (t) => {
  for (const ref of GOOD) t.ok(isImageRef(ref), ref)
  for (const ref of BAD) t.notOk(isImageRef(ref), JSON.stringify(ref))
})

t.test('every way in refuses a bad reference with the key that holds it', async (t) => {
  t.throws(
    () => prewarmArgsOrThrow({ images: ['ubuntu:22.04', BAD[0]] }),
    /bad prewarm request: images\.1: not a valid image reference/,
  )
  t.throws(() => releaseArgsOrThrow({ ref: BAD[0] }), /bad release request: ref: not a valid image reference/)
  t.throws(
    () => parseConfig(agentConfigSchema, { prewarm: { images: [BAD[0]] } }),
    /prewarm\.images\.0: not a valid image reference/,
  )
  t.same(prewarmArgsOrThrow({ images: GOOD }).images, GOOD)
})

t.test("a prewarm's peer URL is a peer listener's export of one image, nothing else", async (t) => {
  const id = 'sha256:' + 'b'.repeat(64)
  const args = (url: string) => ({
    images: ['ubuntu:22.04'],
    peers: { 'ubuntu:22.04': [{ host: 'gpu-2', url, token: 't' }] },
  })
  for (const url of [
    `http://10.0.3.7:9479/v1/images/${id}/export`,
    `https://gpu-2.fleet.example:9479/v1/images/${id}/export`,
  ])
    t.equal(prewarmArgsOrThrow(args(url)).peers!['ubuntu:22.04'][0].url, url, url)
  for (const url of [
    'http://10.0.3.7:9479/latest/meta-data/',
    `http://10.0.3.7:9479/v1/images/${id}/export?x=1`,
    `http://10.0.3.7:9479/v1/images/${id}/export#x`,
    `http://user:pw@10.0.3.7:9479/v1/images/${id}/export`,
    'http://10.0.3.7:9479/v1/images/sha256:abc/export',
    `http://10.0.3.7:9479/v1/images/${id}/export/../../admin`,
  ])
    t.throws(
      () => prewarmArgsOrThrow(args(url)),
      /peers\.ubuntu:22\.04\.0\.url: must be http\(s\):\/\/HOST:PORT\/v1\/images/,
      url,
    )
})

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

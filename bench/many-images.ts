// Thousands of distinct images in a private dockerd in seconds, not hours: one `docker load` of a
// generated archive (docker save's manifest.json form) whose images share one tiny layer and differ
// only by a label in their config, so each has its own id, tag and inspect answer.
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PrivateDockerd } from '../test/harness/dockerd.js'

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

/** a tar holding one small file, made once and shared by every generated image */
function tinyLayer(dir: string): Buffer {
  const root = join(dir, 'layer-root')
  mkdirSync(join(root, 'data'), { recursive: true })
  writeFileSync(join(root, 'data', 'hello'), 'hello\n')
  const tar = join(dir, 'layer-src.tar')
  execFileSync('tar', ['-C', root, '--owner=0', '--group=0', '--mtime=@0', '-cf', tar, 'data'])
  return execFileSync('cat', [tar], { maxBuffer: 1 << 20 })
}

/**
 * Loads images `${prefix}-${i}:1` for every i in `indices` (half of them with a CUDA env, as a GPU
 * host's images have) with one `docker load`; returns their tags.
 */
export function loadManyImages(dockerd: PrivateDockerd, prefix: string, indices: number[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'gh-many-'))
  try {
    const layer = tinyLayer(dir)
    const diffId = `sha256:${sha256(layer)}`
    const archive = join(dir, 'archive')
    mkdirSync(join(archive, 'layer'), { recursive: true })
    writeFileSync(join(archive, 'layer', 'layer.tar'), layer)
    const manifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = []
    const tags: string[] = []
    for (const i of indices) {
      const env = ['PATH=/usr/bin:/bin']
      if (i % 2) env.push('CUDA_VERSION=12.2.2', 'NVIDIA_REQUIRE_CUDA=cuda>=12.2')
      const config = JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        created: new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(),
        config: { Env: env, Cmd: ['/data/hello'], Labels: { 'bench.index': `${prefix}-${i}` } },
        rootfs: { type: 'layers', diff_ids: [diffId] },
        history: [{ created: '2026-01-01T00:00:00Z', created_by: 'bench' }],
      })
      const name = `${sha256(config)}.json`
      writeFileSync(join(archive, name), config)
      const tag = `${prefix}-${i}:1`
      tags.push(tag)
      manifest.push({ Config: name, RepoTags: [tag], Layers: ['layer/layer.tar'] })
    }
    writeFileSync(join(archive, 'manifest.json'), JSON.stringify(manifest))
    const tar = join(dir, 'archive.tar')
    execFileSync('tar', ['-C', archive, '-cf', tar, '.'])
    dockerd.docker(['load', '--quiet', '--input', tar], { timeoutMs: 600_000 })
    return tags
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

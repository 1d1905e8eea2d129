// Which entry of a multi-platform image (manifest list, OCI index) this host runs, the way
// containerd's platforms.Default() matcher picks it: same OS and architecture, variant if given.

export interface Platform {
  os: string
  architecture: string
  variant?: string
}

const GO_ARCH: Record<string, Platform> = {
  x64: { os: 'linux', architecture: 'amd64' },
  arm64: { os: 'linux', architecture: 'arm64', variant: 'v8' },
  arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
  ppc64: { os: 'linux', architecture: 'ppc64le' },
  s390x: { os: 'linux', architecture: 's390x' },
  ia32: { os: 'linux', architecture: '386' },
  riscv64: { os: 'linux', architecture: 'riscv64' },
}

export function hostPlatform(): Platform {
  return GO_ARCH[process.arch] ?? { os: 'linux', architecture: 'amd64' }
}

export interface IndexEntry {
  digest: string
  mediaType?: string
  size?: number
  platform?: { os?: string; architecture?: string; variant?: string }
}

/** the best entry for `want`, or null; an exact variant beats an entry that names none */
export function pickPlatform(entries: IndexEntry[], want: Platform): IndexEntry | null {
  const candidates = entries.filter((e) => e.platform?.os === want.os && e.platform?.architecture === want.architecture)
  if (!want.variant) return candidates[0] ?? null
  // arm64's variant is v8 when unnamed, the way containerd normalizes it
  const variantOf = (e: IndexEntry) => e.platform?.variant ?? (want.architecture === 'arm64' ? 'v8' : undefined)
  return (
    candidates.find((e) => variantOf(e) === want.variant) ?? candidates.find((e) => variantOf(e) === undefined) ?? null
  )
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`
}

// Which registries may be spoken to over plain HTTP: exactly those dockerd itself treats as
// insecure (registry/config.go isSecureIndex): a registry named in IndexConfigs takes its Secure
// flag; otherwise it is insecure when its host resolves into InsecureRegistryCIDRs, which dockerd
// fills with 127.0.0.0/8 and ::1/128 besides the configured insecure-registries.
import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'

/** the part of `docker info` (RegistryConfig) that decides it */
export interface RegistryTrust {
  InsecureRegistryCIDRs?: string[] | null
  IndexConfigs?: Record<string, { Secure?: boolean }> | null
}

/** dockerd's own defaults, for when `docker info` cannot be read */
export const DOCKERD_DEFAULT_TRUST: RegistryTrust = {
  InsecureRegistryCIDRs: ['127.0.0.0/8', '::1/128'],
  IndexConfigs: {},
}

export type Resolve = (host: string) => Promise<string[]>

const resolveHost: Resolve = async (host) => (await lookup(host, { all: true })).map((a) => a.address)

function splitDomain(domain: string): { host: string; port: string | null } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(domain) ?? /^([^:]+)(?::(\d+))?$/.exec(domain)
  return m ? { host: m[1], port: m[2] ?? null } : { host: domain, port: null }
}

function cidrList(cidrs: string[]): BlockList {
  const list = new BlockList()
  for (const cidr of cidrs) {
    const [net, bits] = cidr.split('/')
    const type = isIP(net) === 6 ? 'ipv6' : 'ipv4'
    if (isIP(net) && bits !== undefined) list.addSubnet(net, Number(bits), type)
  }
  return list
}

export async function isInsecureRegistry(
  domain: string,
  trust: RegistryTrust,
  resolve: Resolve = resolveHost,
): Promise<boolean> {
  const indexed = trust.IndexConfigs?.[domain]
  if (indexed) return indexed.Secure === false
  const { host } = splitDomain(domain)
  const list = cidrList(trust.InsecureRegistryCIDRs ?? [])
  let addresses: string[]
  if (isIP(host)) addresses = [host]
  else {
    try {
      addresses = await resolve(host)
    } catch {
      return false // an unresolvable name is not insecure; the HTTPS attempt will say why it failed
    }
  }
  return addresses.some((a) => list.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4'))
}

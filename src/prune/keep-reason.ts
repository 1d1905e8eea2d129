// Why an image must stay. Guards (an image is never planned when any holds), checked in this order
// for the kept reason:
//   1. a container uses it, running or exited (removing it would need force, and breaks a restart);
//   1b. the runtime pins it (CRI `pinned` on containerd: the kubelet's sandbox image, labelled ones);
//   2. a pull in flight is writing it (its reference or id is in pullsInFlight);
//   3. it is in the prewarm's wanted set (configured prewarm.images and images held for a
//      rollout): prewarm pulled it for work to come, and a never-run image would otherwise be the
//      first removed;
//   4. it matches a protect glob (on repo:tag, repo, repo@digest or image id);
//   5. it was first seen less than minAgeSeconds ago. Age is by firstSeen only, not by the image's
//      created time: created is when the image was built, often months before it arrived here, so
//      a fresh pull of an old build would look old. firstSeen starts at "now" for images the agent
//      has no record of, so a lost state file protects everything for minAge instead of freeing it.
//      A firstSeen that cannot be read counts as young: when in doubt, keep.
//   6. it is among the newest keepPerRepository images of one of its repositories (newest by
//      created, the build time, which is what "newest version" means; ties by firstSeen).
import { imageBeingPulled, imageWanted } from '../registry/image-names.js'
import { protectedBy } from './containers-plan.js'
import type { Keyed } from './image-order.js'
import { KEPT } from './plan-types.js'
import type { ProtectMatcher } from './protect-match.js'

/** what the guards need, built once per plan */
export interface KeepContext {
  now: number
  minAgeMs: number
  inFlight: Set<string>
  /** a pull in flight names something of the form …/sha256:… */
  idForms: boolean
  wanted: Set<string>
  protect: ProtectMatcher
  protectLabels: readonly string[]
  newest: Map<string, string>
  keepPerRepository: number
}

/** Why an image must stay, or null when it may go. */
export function keepReason({ image, firstSeen }: Keyed, ctx: KeepContext): string | null {
  if (image.containers.length > 0) return KEPT.inUse
  if (image.pinned) return KEPT.pinned
  if (ctx.inFlight.size > 0 && imageBeingPulled(image, ctx.inFlight, ctx.idForms)) return KEPT.pullInFlight
  if (ctx.wanted.size > 0 && imageWanted(image, ctx.wanted)) return KEPT.wanted
  const glob = ctx.protect(image)
  if (glob !== null) return `protected by "${glob}"`
  const label = image.labels ? protectedBy(image.labels, ctx.protectLabels) : null
  if (label !== null) return `protected by label ${label}`
  if (ctx.now - firstSeen < ctx.minAgeMs) {
    return Number.isFinite(firstSeen)
      ? `younger than minAgeSeconds (first seen ${image.firstSeen})`
      : 'first-seen time unknown: kept as young'
  }
  const repo = ctx.newest.get(image.id)
  if (repo !== undefined) return `among the newest ${ctx.keepPerRepository} of ${repo}`
  return null
}

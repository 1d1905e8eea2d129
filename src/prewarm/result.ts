// What a prewarm answers: one result per image and the report of the whole run.
import type { Trigger } from '../core/actions.js'
import type { PlanItem } from './plan.js'

export type PullStatus = 'pulled' | 'present' | 'skipped' | 'failed'

export interface PullResult {
  ref: string
  status: PullStatus
  reason: string
  /** the registry or mirror the image came from (or would come from); null when none was reached */
  source: string | null
  durationSeconds: number
  warnings?: string[]
  /** why a skipped image was skipped */
  skip?: 'incompatible' | 'disk'
  /** the pulled image's compressed size (layers the host already had included); 0 when nothing was pulled */
  bytesPulled?: number
  /** where the bytes came from: the image's own registry, a mirror of it, or another host of the fleet */
  sourceKind?: SourceKind
  /** the named peers that failed the image (refused, cut, sent other bytes): the coordinator stops naming them */
  peerFailures?: PeerFailure[]
}

export interface PeerFailure {
  host: string
  reason: string
  /** its archive named images on this host (names put back): the coordinator names it no more */
  breach?: true
}

export type SourceKind = 'registry' | 'mirror' | 'peer'

export interface PrewarmReport {
  trigger: Trigger
  dryRun: boolean
  results: PullResult[]
  /** what was planned, item by item: the dry-run answer, also given for a real run */
  plan: { ref: string; action: PlanItem['action']; reason: string; estimatedBytes?: number; warnings: string[] }[]
  durationSeconds: number
}

/** the status of a plan item's verdict, for an item that needs no pull */
export function resultStatus(action: PlanItem['action']): PullStatus {
  return action === 'present' ? 'present' : action === 'fail' ? 'failed' : action === 'skip' ? 'skipped' : 'pulled'
}

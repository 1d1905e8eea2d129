// One schema for an image reference wherever one comes in (config, HTTP bodies, command args): a
// reference Docker would accept, so nothing that is not one (a newline, a label line) travels on
// into the wanted set, the runtime or the node-label file.
import { z } from 'zod'
import { parseImageRef } from './registry/reference.js'

export function isImageRef(ref: string): boolean {
  try {
    parseImageRef(ref)
    return ref.trim() === ref
  } catch {
    return false
  }
}

export const imageRefSchema = z
  .string()
  .min(1)
  .max(500)
  .refine(isImageRef, 'not a valid image reference (repo:tag or repo@sha256:…)')

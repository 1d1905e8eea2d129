// The body of an answer from a server that is not trusted, read with a cap: a server chooses how
// much it sends, and a body read whole lets it choose how much memory this process takes. The
// declared content-length is checked first, so nothing is read of a body a server admits is too
// large; the bytes are counted again as they arrive, since a chunked body declares nothing and a
// compressed one declares only its compressed size. Past the cap the body is cancelled, which
// closes the connection: the rest is never read.

/** the body is larger than the cap; `bytes` is what was declared, or what had arrived when it was cut */
export class BodyTooLargeError extends Error {
  constructor(
    readonly limit: number,
    readonly bytes: number,
    readonly declared: boolean,
  ) {
    super(declared ? `content-length ${bytes} is over ${limit} bytes` : `body cut off at ${bytes} bytes, over ${limit}`)
    this.name = 'BodyTooLargeError'
  }
}

/** what of a fetch Response (or nodeFetch's) is read here */
export interface Answer {
  headers: { get(name: string): string | null }
  body: ReadableStream<Uint8Array> | null
}

/** the whole body, or BodyTooLargeError once it is (or says it is) over `limit` bytes */
export async function readBody(res: Answer, limit: number): Promise<Buffer> {
  const declared = declaredLength(res)
  if (declared !== null && declared > limit) {
    await res.body?.cancel().catch(() => undefined)
    throw new BodyTooLargeError(limit, declared, true)
  }
  const { bytes, cut, seen } = await collect(res.body, limit)
  if (cut) throw new BodyTooLargeError(limit, seen, false)
  return bytes
}

/** at most the first `limit` bytes of the body, the rest left unread; `cut` when there was more */
export async function readBodyPrefix(res: Answer, limit: number): Promise<{ bytes: Buffer; cut: boolean }> {
  const { bytes, cut } = await collect(res.body, limit)
  return { bytes, cut }
}

function declaredLength(res: Answer): number | null {
  const header = res.headers.get('content-length')
  return header !== null && /^\d+$/.test(header.trim()) ? Number(header) : null
}

/** reads until the end, or until more than `limit` bytes came: then the first `limit` and how many had come */
async function collect(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<{ bytes: Buffer; cut: boolean; seen: number }> {
  if (!body) return { bytes: Buffer.alloc(0), cut: false, seen: 0 }
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { bytes: Buffer.concat(chunks, size), cut: false, seen: size }
      if (size + value.length > limit) {
        chunks.push(value.subarray(0, limit - size))
        return { bytes: Buffer.concat(chunks, limit), cut: true, seen: size + value.length }
      }
      chunks.push(value)
      size += value.length
    }
  } finally {
    // a no-op on a finished body; on one cut short it closes the connection
    await reader.cancel().catch(() => undefined)
  }
}

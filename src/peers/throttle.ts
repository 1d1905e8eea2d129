// One byte budget shared by every upload: peers.maxUploadBytesPerSecond bounds what this host
// sends to its peers together, so serving images cannot take the link its own jobs need.
import { Transform, type TransformCallback } from 'node:stream'

export class ByteBudget {
  private available: number
  private last: number

  constructor(
    private readonly bytesPerSecond: number,
    private readonly clock: () => number = () => performance.now(),
  ) {
    // at most one second of burst
    this.available = bytesPerSecond
    this.last = clock()
  }

  /** milliseconds to wait before `bytes` may go; the bytes are taken from the budget now */
  take(bytes: number): number {
    const now = this.clock()
    this.available = Math.min(this.bytesPerSecond, this.available + ((now - this.last) / 1000) * this.bytesPerSecond)
    this.last = now
    this.available -= bytes
    return this.available >= 0 ? 0 : (-this.available / this.bytesPerSecond) * 1000
  }

  /** a stream that passes bytes on no faster than the budget allows */
  throttle(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, done: TransformCallback) => {
        const wait = this.take(chunk.length)
        if (wait === 0) done(null, chunk)
        else setTimeout(() => done(null, chunk), wait)
      },
    })
  }
}

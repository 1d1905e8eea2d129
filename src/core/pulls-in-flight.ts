// The image references that pulls of this agent are writing right now. The composition root owns
// the one instance; prewarm adds a reference for as long as it pulls it, and prune reads the list
// at planning and again before each removal, leaving those images alone.
export class PullsInFlight {
  /** a count per reference: two pulls of one name (through a mirror and directly) may overlap */
  private readonly refs = new Map<string, number>()

  add(ref: string): void {
    this.refs.set(ref, (this.refs.get(ref) ?? 0) + 1)
  }

  remove(ref: string): void {
    const left = (this.refs.get(ref) ?? 0) - 1
    if (left > 0) this.refs.set(ref, left)
    else this.refs.delete(ref)
  }

  list(): string[] {
    return [...this.refs.keys()]
  }
}

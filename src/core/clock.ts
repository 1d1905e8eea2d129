// The one clock of the agent: every part that stamps or compares times gets it injected, so tests
// can fix it. Only timers (setTimeout, setInterval) still follow the real time.

/** the current time */
export type Clock = () => Date

/** the real clock, the one default */
export const systemClock: Clock = () => new Date()

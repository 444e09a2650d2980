// vrift's own liveness for one peer (mDNS alone keeps a crashed peer listed for hours).
// A refused connection means nobody listens there now: the peer is gone at once. A timeout
// may be a slow moment: three in a row cool the peer down for COOL_MS, doubling with each
// cool-down in a row; when one ends, a single request probes it (the others still skip it)
// and its answer brings the peer back. Any answer resets the streak.

export const TIMEOUTS_TO_COOL = 3;
export const COOL_MS = 30_000;
export const COOL_MAX_MS = 10 * 60_000;

export type Health = { state: 'up' } | { state: 'cooling'; until: number; probing: boolean } | { state: 'gone' };

export class Liveness {
  private timeoutsInARow = 0;
  private coolsInARow = 0;
  private health: Health = { state: 'up' };
  reason: string | undefined;

  constructor(private readonly now: () => number) {}

  get state(): 'up' | 'cooling' | 'gone' {
    return this.health.state;
  }

  /**
   * Whether a request may go to this peer now. At the end of a cool-down exactly one caller
   * gets true (the probe) until that probe's outcome is reported.
   */
  mayAsk(): boolean {
    const h = this.health;
    if (h.state === 'up') return true;
    if (h.state === 'gone' || h.probing || this.now() < h.until) return false;
    h.probing = true;
    return true;
  }

  answered(): void {
    this.timeoutsInARow = 0;
    this.coolsInARow = 0;
    this.reason = undefined;
    if (this.health.state !== 'gone') this.health = { state: 'up' };
  }

  timedOut(why: string): void {
    this.timeoutsInARow++;
    const h = this.health;
    const probeFailed = h.state === 'cooling' && h.probing;
    if (!probeFailed && (h.state !== 'up' || this.timeoutsInARow < TIMEOUTS_TO_COOL)) return;
    const period = Math.min(COOL_MAX_MS, COOL_MS * 2 ** Math.min(this.coolsInARow, 20));
    this.coolsInARow++;
    this.reason = why;
    this.health = { state: 'cooling', until: this.now() + period, probing: false };
  }

  /** It answered with something unusable (wrong bytes, garbage): cooled down at once. */
  cool(why: string): void {
    this.timeoutsInARow = TIMEOUTS_TO_COOL - 1;
    if (this.health.state === 'cooling') this.health.probing = true; // a failed probe: the next, longer period
    this.timedOut(why);
  }

  /** Nobody listens (connection refused), a goodbye, or the peer stopped answering mDNS. */
  gone(why: string): void {
    this.reason = why;
    this.health = { state: 'gone' };
  }

  /** Seen again (a new announcement, a static peer's next round). */
  revive(): void {
    if (this.health.state === 'gone') {
      this.health = { state: 'up' };
      this.timeoutsInARow = 0;
      this.reason = undefined;
    }
  }
}

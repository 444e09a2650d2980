// A remote that errors or times out is left alone for a while, so a dead server costs one
// timeout per cool-down period instead of one per compile. Each failure in a row doubles
// the period (up to `maxMs`): a server that stays down costs a handful of timeouts over a
// whole build, not one every period. The first answer from it resets the streak.
// With a `probe`, the end of a period does not hand the next compile a possible timeout:
// the remote stays off while one background request checks it, and comes back when that
// request is answered (a failed probe starts the next, longer period).
export class CoolDown {
  private until = 0;
  private lastReason = '';
  private lastAt = 0;
  private streak = 0;
  private tripped = false;
  private probing: Promise<void> | undefined;
  private asking: Promise<boolean> | undefined;

  constructor(
    private readonly periodMs: number,
    private readonly now: () => number,
    private readonly maxMs = 10 * 60_000,
    private readonly probe?: () => Promise<boolean>,
  ) {}

  get active(): boolean {
    if (this.now() < this.until) return true;
    if (!this.tripped || !this.probe) return false;
    this.probing ??= this.probe()
      .then(
        (ok) => {
          if (ok) this.ok();
          else if (this.tripped) this.trip(this.lastReason);
        },
        () => this.trip(this.lastReason),
      )
      .finally(() => (this.probing = undefined));
    return true;
  }

  /** The running probe, if any (tests wait for it). */
  settled(): Promise<void> {
    return this.probing ?? Promise.resolve();
  }

  /** Asks once now (the check at daemon start); true when that found no answer and tripped. */
  async check(reason: string): Promise<boolean> {
    if (!this.probe || this.active) return false;
    if (await this.probe().catch(() => false)) return false;
    this.trip(reason);
    return true;
  }

  /**
   * Asks once now, cooling down or not (a daemon about to exit with uploads that wait for the
   * remote): true when it answered, and the cool-down is over. Callers at once share one request.
   */
  askNow(): Promise<boolean> {
    if (!this.probe) return Promise.resolve(!this.active);
    this.asking ??= (async () => {
      await this.probing;
      if (!this.tripped && this.now() >= this.until) return true;
      const ok = await this.probe!().catch(() => false);
      if (ok) this.reset();
      else this.trip(this.lastReason);
      return ok;
    })().finally(() => (this.asking = undefined));
    return this.asking;
  }

  trip(reason: string): void {
    const period = Math.min(this.maxMs, this.periodMs * 2 ** Math.min(this.streak, 20));
    this.streak++;
    this.until = this.now() + period;
    this.lastReason = reason;
    this.lastAt = this.now();
    this.tripped = true;
  }

  /** The last failure, kept after the remote answers again (`vrift stats` shows it). */
  lastFailure(): { reason: string; at: number } | undefined {
    return this.lastAt ? { reason: this.lastReason, at: this.lastAt } : undefined;
  }

  // The remote answered (a hit, a miss, a stored upload).
  ok(): void {
    this.streak = 0;
    this.tripped = false;
  }

  reset(): void {
    this.until = 0;
    this.streak = 0;
    this.tripped = false;
  }

  describe(): { cooling_down: boolean; until?: number; reason?: string; failures_in_a_row?: number } {
    return this.active ? { cooling_down: true, until: this.until, reason: this.lastReason, failures_in_a_row: this.streak } : { cooling_down: false };
  }
}

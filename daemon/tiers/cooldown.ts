// A remote that errors or times out is left alone for a while, so a dead server costs one
// timeout per cool-down period instead of one per compile. Each failure in a row doubles
// the period (up to `maxMs`): a server that stays down costs a handful of timeouts over a
// whole build, not one every period. The first answer from it resets the streak.
export class CoolDown {
  private until = 0;
  private lastReason = '';
  private streak = 0;

  constructor(private readonly periodMs: number, private readonly now: () => number, private readonly maxMs = 10 * 60_000) {}

  get active(): boolean {
    return this.now() < this.until;
  }

  trip(reason: string): void {
    const period = Math.min(this.maxMs, this.periodMs * 2 ** Math.min(this.streak, 20));
    this.streak++;
    this.until = this.now() + period;
    this.lastReason = reason;
  }

  // The remote answered (a hit, a miss, a stored upload).
  ok(): void {
    this.streak = 0;
  }

  reset(): void {
    this.until = 0;
    this.streak = 0;
  }

  describe(): { cooling_down: boolean; until?: number; reason?: string; failures_in_a_row?: number } {
    return this.active ? { cooling_down: true, until: this.until, reason: this.lastReason, failures_in_a_row: this.streak } : { cooling_down: false };
  }
}

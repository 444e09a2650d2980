// A remote that errors or times out is left alone for a while, so a dead server costs one
// timeout per cool-down period instead of one per compile.
export class CoolDown {
  private until = 0;
  private lastReason = '';

  constructor(private readonly periodMs: number, private readonly now: () => number) {}

  get active(): boolean {
    return this.now() < this.until;
  }

  trip(reason: string): void {
    this.until = this.now() + this.periodMs;
    this.lastReason = reason;
  }

  reset(): void {
    this.until = 0;
  }

  describe(): { cooling_down: boolean; until?: number; reason?: string } {
    return this.active ? { cooling_down: true, until: this.until, reason: this.lastReason } : { cooling_down: false };
  }
}

// Lookup latency inside the daemon, per outcome (hit, miss, pass): the last `size` samples
// of each, so `vrift stats` can show percentiles without the history growing.
export interface LatencySummary {
  n: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
}

export class Latency {
  private rings = new Map<string, { buf: Float64Array; next: number; count: number }>();
  constructor(private readonly size = 8192) {}

  record(kind: string, ms: number) {
    let r = this.rings.get(kind);
    if (!r) this.rings.set(kind, (r = { buf: new Float64Array(this.size), next: 0, count: 0 }));
    r.buf[r.next] = ms;
    r.next = (r.next + 1) % this.size;
    r.count = Math.min(this.size, r.count + 1);
  }

  summary(): Record<string, LatencySummary> {
    const out: Record<string, LatencySummary> = {};
    for (const [kind, r] of this.rings) {
      const xs = Array.from(r.buf.subarray(0, r.count)).sort((a, b) => a - b);
      const q = (p: number) => +xs[Math.min(xs.length - 1, Math.floor(p * xs.length))].toFixed(3);
      out[kind] = { n: r.count, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), max_ms: +xs[xs.length - 1].toFixed(3) };
    }
    return out;
  }

  zero() {
    this.rings.clear();
  }
}

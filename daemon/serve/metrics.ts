// Request counters for /status and /metrics (Prometheus text format 0.0.4).
export class ServeMetrics {
  private byStatus = new Map<string, number>();
  bytesIn = 0;
  bytesOut = 0;
  hits = 0;
  misses = 0;
  puts = 0;
  putBytes = 0;
  rejected = 0; // uploads refused for their content: not matching the digest (400) or over the limit (413)
  tooLarge = 0;

  request(method: string, status: number, bytesIn: number, bytesOut: number): void {
    const k = `${method}\u0000${status}`;
    this.byStatus.set(k, (this.byStatus.get(k) ?? 0) + 1);
    this.bytesIn += bytesIn;
    this.bytesOut += bytesOut;
  }

  lookup(hit: boolean): void {
    if (hit) this.hits++;
    else this.misses++;
  }

  stored(bytes: number): void {
    this.puts++;
    this.putBytes += bytes;
  }

  summary() {
    let requests = 0;
    for (const n of this.byStatus.values()) requests += n;
    return {
      requests,
      hits: this.hits,
      misses: this.misses,
      puts: this.puts,
      put_bytes: this.putBytes,
      rejected_uploads: this.rejected,
      too_large_uploads: this.tooLarge,
      bytes_in: this.bytesIn,
      bytes_out: this.bytesOut,
    };
  }

  prometheus(usage: { items: number; bytes: number; maxSize: number; evictedItems: number; evictedBytes: number }): string {
    const L: string[] = [];
    const metric = (name: string, type: string, help: string, rows: [string, number][]) => {
      L.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of rows) L.push(`${name}${labels} ${v}`);
    };
    metric(
      'vrift_serve_requests_total',
      'counter',
      'Requests by method and status.',
      [...this.byStatus].map(([k, v]) => {
        const [m, s] = k.split('\u0000');
        return [`{method="${m.replace(/[^A-Z]/g, '')}",status="${s}"}`, v];
      }),
    );
    metric('vrift_serve_lookups_total', 'counter', 'GET/HEAD lookups by result.', [
      ['{result="hit"}', this.hits],
      ['{result="miss"}', this.misses],
    ]);
    metric('vrift_serve_uploads_total', 'counter', 'Uploads stored.', [['', this.puts]]);
    metric('vrift_serve_rejected_uploads_total', 'counter', 'Uploads refused for their content: not matching the digest, or over the size limit.', [
      ['{reason="digest"}', this.rejected - this.tooLarge],
      ['{reason="too_large"}', this.tooLarge],
    ]);
    metric('vrift_serve_received_bytes_total', 'counter', 'Request body bytes on the wire.', [['', this.bytesIn]]);
    metric('vrift_serve_sent_bytes_total', 'counter', 'Response body bytes on the wire.', [['', this.bytesOut]]);
    if (usage.items >= 0) {
      metric('vrift_serve_store_items', 'gauge', 'Objects in the store.', [['', usage.items]]);
      metric('vrift_serve_store_bytes', 'gauge', 'Bytes in the store.', [['', usage.bytes]]);
      metric('vrift_serve_store_max_bytes', 'gauge', 'Size limit (0 = none).', [['', usage.maxSize]]);
      metric('vrift_serve_evicted_total', 'counter', 'Objects evicted.', [['', usage.evictedItems]]);
    }
    return L.join('\n') + '\n';
  }
}

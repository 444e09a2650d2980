import fs from 'node:fs';
import path from 'node:path';

// The shims append one line to log/fallback.ndjson whenever a call went around the cache
// (no daemon answered in time, a reply could not be used, the result could not be
// reported). The daemon never sees those calls, so `vrift stats` counts them from here.

const TAIL_BYTES = 1 << 20;

export function fallbackFile(logDir: string): string {
  return path.join(logDir, 'fallback.ndjson');
}

/** Fallbacks per reason recorded at or after `sinceMs` (from the last MiB of the file). */
export function countFallbacks(file: string, sinceMs: number): Record<string, number> {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.max(0, size - TAIL_BYTES);
      const buf = Buffer.alloc(size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
      text = buf.toString('utf8');
      if (start > 0) text = text.slice(text.indexOf('\n') + 1);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return {};
  }
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const r = JSON.parse(line) as { ts?: unknown; reason?: unknown };
      if (typeof r.ts !== 'number' || r.ts < sinceMs || typeof r.reason !== 'string') continue;
      out[r.reason] = (out[r.reason] ?? 0) + 1;
    } catch {
      // a torn or foreign line: not ours to count
    }
  }
  return out;
}

/** After `vrift stats --zero`: the old lines are no longer counted, so drop them. */
export function clearFallbacks(file: string) {
  try {
    fs.truncateSync(file, 0);
  } catch {
    // none yet
  }
}

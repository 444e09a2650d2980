import bytes from 'bytes';
import { ERROR_CODES } from '../ipc/errors.js';
import { explainReason, type ReasonGroup } from '../ipc/reasons.js';

type Stats = Record<string, unknown> & {
  requests: number;
  hits: number;
  misses: number;
  compile_failed: number;
  uncacheable: Record<string, number>;
  not_stored: Record<string, number>;
  errors: Record<string, number>;
  shim_fallbacks?: Record<string, number>;
  stored: number;
  stored_bytes: number;
  since: string;
  local?: Record<string, number | string>;
  daemon?: Record<string, number> & { watch?: Record<string, number> };
  remote?: Record<string, unknown>;
  latency?: Record<string, unknown>;
};

const ago = (t: number) => {
  const secs = Math.max(0, Math.round((Date.now() - t) / 1000));
  return secs < 120 ? `${secs} s ago` : secs < 7200 ? `${Math.round(secs / 60)} min ago` : `${Math.round(secs / 3600)} h ago`;
};
const sum = (m: Record<string, number> = {}) => Object.values(m).reduce((a, b) => a + b, 0);

/** Hits among the calls the cache could have answered (failed compiles are not misses). */
export function hitRate(s: { hits: number; misses: number }): string {
  const n = s.hits + s.misses;
  return n === 0 ? '-' : `${((100 * s.hits) / n).toFixed(1)}%`;
}

// What each line of `vrift stats` counts, printed under it with --explain (and the README's
// list of counters says the same).
export const EXPLAIN: Record<string, string> = {
  'compiler calls': 'every call that reached the daemon (the shim asked it about a compile or link)',
  hits: 'calls answered from the cache: the compiler did not run; hit rate = hits / (hits + misses)',
  misses: 'calls the cache could have answered but had no result for: the compiler ran and its result was stored',
  'written after the build': 'misses whose shim exited before the daemon had read its outputs: they were stored after the compile ended',
  'failed compiles (not stored)': 'calls whose compiler failed (non-zero exit): run every time, never stored, not counted as misses',
  uncacheable: 'calls vrift cannot cache (linking to stdout, unknown flags, ...): the compiler ran as without vrift; the reasons follow',
  'compiled, not stored': 'misses whose result was not kept (an input changed during the compile, output too large, ...); the reasons follow',
  errors: 'daemon errors by code; each such call ran the compiler as without vrift',
  'shim went around the cache': 'calls the shim sent straight to the compiler (no daemon, timeout, ...): see log/fallback.ndjson',
  'results + manifests': 'cache entries in the local store',
  blobs: 'output files in the local store (deduplicated)',
  size: 'bytes the local store takes, of max_local_size (least recently used entries are evicted above it)',
  'corrupt entries dropped': 'entries or blobs that failed verification when read and were removed',
  'evicted files': 'files removed by size or age limits since the counters were zeroed',
  'still being written': 'results waiting for a pause in the build before they are written; the numbers above grow as they land',
  'hits / misses': 'lookups the remote answered with a result / without one',
  'errors / timeouts': 'remote requests that failed (HTTP status or connection) / got no answer in time',
  'skipped (cool-down)': 'lookups and uploads not tried while the remote cools down after a failure',
  uploads: 'results and blobs sent to the remote',
  'refused (untrusted)': 'entries the remote gave that no trusted key signed (remote_require_signatures): used as misses',
  'bytes down / up': 'bytes fetched from / sent to the remote',
  'packs fetched / used from': 'packs of entries fetched / entries a build got from them without their own request',
  'last failure': "the remote's last failed request and why (an HTTP status such as 401 means the server refused it)",
  'daemon pid / rss': 'the daemon process and its memory',
  'watched input dirs': 'directories whose changes the daemon hears of (inotify); inputs elsewhere are checked by stat on each lookup',
};

export function formatStats(raw: Record<string, unknown>, home: string, explain = false): string {
  const s = raw as Stats;
  const lines: string[] = [];
  const row = (k: string, v: string | number, extra = '', meaning: string | undefined = EXPLAIN[k.trim()]) => {
    lines.push(`  ${k.padEnd(28)} ${String(v).padStart(9)}${extra}`);
    if (explain && meaning) lines.push(`      ${meaning}`);
  };
  // A reason's own line: what it means from the registry (ipc/reasons.ts), errors by code.
  const reasons = (m: Record<string, number>, meaning: (k: string) => string | undefined) => {
    for (const [k, v] of Object.entries(m).sort((a, b) => b[1] - a[1])) row(`  ${k}`, v, '', meaning(k) ?? '');
  };
  const inGroup = (g: ReasonGroup) => (k: string) => explainReason(g, k);
  lines.push(`vrift statistics for ${home} (since ${s.since})`);
  row('compiler calls', s.requests);
  if (s.split_commands) row('  split by source', Number(s.split_commands), '   (each compile and link also counted)');
  row('hits', s.hits, `   (hit rate ${hitRate(s)})`);
  row('misses', s.misses);
  if (s.one_way_reports) row('  written after the build', Number(s.one_way_reports));
  row('failed compiles (not stored)', s.compile_failed);
  row('uncacheable', sum(s.uncacheable));
  reasons(s.uncacheable, inGroup('uncacheable'));
  row('compiled, not stored', sum(s.not_stored));
  reasons(s.not_stored, inGroup('not_stored'));
  row('errors', sum(s.errors));
  reasons(s.errors, (k) => (Object.hasOwn(ERROR_CODES, k) ? ERROR_CODES[k as keyof typeof ERROR_CODES] : undefined));
  const fb = s.shim_fallbacks ?? {};
  row('shim went around the cache', sum(fb), sum(fb) ? '   (see log/fallback.ndjson)' : '');
  reasons(fb, inGroup('shim_fallbacks'));
  if (s.local) {
    const l = s.local;
    lines.push(`  local store ${l.path}`);
    row('  results + manifests', Number(l.entries ?? 0));
    row('  blobs', Number(l.blobs ?? 0));
    row('  size', bytes(Number(l.bytes ?? 0)) ?? '0B', ` of ${bytes(Number(l.max_size ?? 0))}`);
    row('  corrupt entries dropped', Number(l.corrupt ?? 0));
    row('  evicted files', Number(l.evicted_files ?? 0));
    const w = (l as { waiting?: { items: number; bytes: number; spooled: number } }).waiting;
    if (w?.items) row('  still being written', w.items, `   (${bytes(w.bytes + w.spooled)}; the numbers above grow as they land)`);
  }
  if (s.remote) {
    const r = s.remote as Record<string, number | string | boolean>;
    const n = (k: string) => Number(r[k] ?? 0);
    lines.push(`  remote ${String(r.url)}${r.read_only ? ' (read-only)' : ''}${r.cooling_down ? ' (cooling down after a failure)' : ''}`);
    row('  hits / misses', `${n('hits')} / ${n('misses')}`);
    row('  errors / timeouts', `${n('errors')} / ${n('timeouts')}`, n('integrity') ? `   (${n('integrity')} failed verification)` : '');
    row('  skipped (cool-down)', n('skipped'));
    if (n('untrusted')) row('  refused (untrusted)', n('untrusted'), '   (entries not signed by a trusted key: see the log for who signed them)');
    row(
      '  uploads',
      n('uploads'),
      `   (${n('upload_skipped')} already there, ${n('upload_dropped')} dropped${n('upload_expired') ? ` (${n('upload_expired')} held too long for the remote)` : ''}, ${n('upload_orphans')} entries held back (object not up), ${n('queued')} queued)`,
    );
    row('  bytes down / up', `${bytes(n('bytes_down'))} / ${bytes(n('bytes_up'))}`);
    if (n('packs') || n('packs_uploaded'))
      row(
        '  packs fetched / used from',
        `${n('packs')} / ${n('from_packs')}`,
        `   (entries a build got without their own request; ${n('packs_uploaded')} packs uploaded)`,
      );
    if (r.last_error) row('  last failure', ago(Date.parse(String(r.last_error_at))), `   ${String(r.last_error)}`);
  }
  if (s.peers) {
    const r = s.peers as Record<string, number | string>;
    const n = (k: string) => Number(r[k] ?? 0);
    lines.push(
      `  LAN peers (${String(r.mode)}, serving on port ${n('port')}): ${n('peers_up')} up, ${n('peers_cooling')} cooling down${n('peers_slow') ? `, ${n('peers_slow')} slow (asked, not waited for)` : ''}`,
    );
    row('  hits / misses', `${n('hits')} / ${n('misses')}`, `   (${n('late')} went on without waiting for peers, ${n('late_kept')} late answers kept)`);
    row('  errors / timeouts', `${n('errors')} / ${n('timeouts')}`, `   (${n('untrusted')} entries refused as untrusted)`);
    row('  bytes down / up', `${bytes(n('bytes_down'))} / ${bytes(n('bytes_up'))}`);
  }
  const lat = (s.latency ?? {}) as Record<string, { n: number; p50_ms: number; p99_ms: number }>;
  for (const [k, v] of Object.entries(lat)) row(`lookup (${k}) p50/p99`, `${v.p50_ms} / ${v.p99_ms} ms`, `   (last ${v.n})`);
  if (s.daemon)
    row(
      'daemon pid / rss',
      `${s.daemon.pid}`,
      ` / ${bytes(s.daemon.rss)}${s.daemon.heap_used ? `   (JS heap ${bytes(s.daemon.heap_used)}, buffers ${bytes(s.daemon.external ?? 0)})` : ''}`,
    );
  const w = s.daemon?.watch;
  if (w) row('watched input dirs', w.dirs, `   (${w.events} events, ${w.overflows} overflows, ${w.refused} not watchable: checked by stat)`);
  return lines.join('\n') + '\n';
}

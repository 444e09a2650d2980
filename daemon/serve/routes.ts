// What a request path names. Bazel's layout first (`[/<instance>…]/ac|cas/<64 hex>`, the
// instance is accepted and ignored, as bazel-remote does); any other path of plain segments
// is an opaque key (ccache's `subdirs` and `flat` layouts, Gradle's `/cache/<key>`).
export type ObjectRoute = { t: 'ac' | 'cas'; hash: string; instance: string } | { t: 'kv'; key: string };
export type Route = { t: 'root' | 'status' | 'metrics' } | ObjectRoute | { t: 'bad'; why: string };

// No leading dot (so never `.` or `..`), no separators, no escapes: a key is a safe file name.
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const HASH = /^[a-f0-9]{64}$/;
const CCACHE_REST = /^[a-v0-9]{20,60}$/;
const MAX_PATH = 1024;
const MAX_DEPTH = 8;

export function parseRoute(rawUrl: string): Route {
  const q = rawUrl.indexOf('?');
  const p = q < 0 ? rawUrl : rawUrl.slice(0, q);
  if (p === '/' || p === '') return { t: 'root' };
  if (p === '/status') return { t: 'status' };
  if (p === '/metrics') return { t: 'metrics' };
  if (p.length > MAX_PATH) return { t: 'bad', why: 'path too long' };
  if (!p.startsWith('/')) return { t: 'bad', why: 'path must start with /' };
  const segs = p.slice(1).split('/');
  if (segs.length > MAX_DEPTH) return { t: 'bad', why: 'too many path segments' };
  for (const s of segs) if (!SEGMENT.test(s)) return { t: 'bad', why: `invalid path segment ${JSON.stringify(s.slice(0, 40))}` };
  const n = segs.length;
  // ccache's `subdirs` layout puts a key's first two (hex) characters in a directory: 1 key in
  // 256 is `…/ac/<rest>`, the rest shorter than a Bazel hash (31 base32hex characters).
  if (n >= 2 && segs[n - 2] === 'ac' && CCACHE_REST.test(segs[n - 1])) return { t: 'kv', key: segs.join('/') };
  if (n >= 2 && (segs[n - 2] === 'ac' || segs[n - 2] === 'cas')) {
    if (!HASH.test(segs[n - 1])) return { t: 'bad', why: `${segs[n - 2]} key must be 64 lowercase hex characters` };
    return { t: segs[n - 2] as 'ac' | 'cas', hash: segs[n - 1], instance: segs.slice(0, n - 2).join('/') };
  }
  if (segs.includes('ac') || segs.includes('cas')) return { t: 'bad', why: 'ac/ and cas/ must be followed by exactly one hash' };
  return { t: 'kv', key: segs.join('/') };
}

/** The storage key (same names on disk and in S3). */
export function storageKey(r: ObjectRoute): string {
  return r.t === 'kv' ? `kv/${r.key}` : `${r.t}/${r.hash}`;
}

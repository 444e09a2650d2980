import { VriftError } from '../ipc/errors.js';

// Sizes and durations as users write them, read by one strict grammar for every flag,
// environment variable and config key. The lenient libraries read only a leading number
// (`5G` -> 5 bytes, `30x` -> nothing), and a destructive command must never run on a
// value it could not read, so anything outside the grammar is an error naming the value.

export const SIZE_FORMS = 'a number of bytes, or with a unit: 10k, 500M, 5G, 5GB, 5GiB, 2T (units are powers of 1024)';
export const DURATION_FORMS = 'a number with a unit: 500ms, 90s, 30m, 12h, 30d, 2w (a bare number is seconds)';

// K/KB/KiB all mean 1024: the binary reading is what the store has always used for "50GB".
const SIZE = /^(\d+(?:\.\d+)?)\s*(?:([kmgtp])(?:i?b)?|b)?$/i;
const SIZE_UNIT: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

// Lower case only: `30M` could be meant as months, and minutes would remove far more.
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?$/;
const DURATION_UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Bytes, or undefined when `raw` is not a size (negative, empty, unknown unit, too big). */
export function sizeOf(raw: string | number): number | undefined {
  if (typeof raw === 'number') return Number.isSafeInteger(raw) && raw >= 0 ? raw : undefined;
  const m = SIZE.exec(raw.trim());
  if (!m) return undefined;
  const n = Math.floor(Number(m[1]) * (m[2] ? SIZE_UNIT[m[2].toLowerCase()] : 1));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Milliseconds, or undefined when `raw` is not a duration. Numbers are seconds, as in config files. */
export function durationOf(raw: string | number): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) && raw >= 0 ? checked(raw * 1000) : undefined;
  const m = DURATION.exec(raw.trim());
  if (!m) return undefined;
  return checked(Number(m[1]) * DURATION_UNIT[m[2] ?? 's']);
}

const checked = (n: number) => (Number.isSafeInteger(Math.round(n)) ? Math.round(n) : undefined);

/** `where` names the value's origin for the message: a flag, an environment variable, file:key. */
export function parseSize(raw: unknown, where: string): number {
  const n = typeof raw === 'string' || typeof raw === 'number' ? sizeOf(raw) : undefined;
  if (n === undefined) throw new VriftError('ECONFIG', `${where}: ${JSON.stringify(raw)} is not a size; use ${SIZE_FORMS}`, { fields: { where, value: raw } });
  return n;
}

export function parseDuration(raw: unknown, where: string): number {
  const n = typeof raw === 'string' || typeof raw === 'number' ? durationOf(raw) : undefined;
  if (n === undefined)
    throw new VriftError('ECONFIG', `${where}: ${JSON.stringify(raw)} is not a duration; use ${DURATION_FORMS}`, { fields: { where, value: raw } });
  return n;
}

/** The inverse of sizeOf, in the largest unit that keeps the value exact (so a printed value reads back the same). */
export function formatSize(n: number): string {
  for (const u of ['p', 't', 'g', 'm', 'k'] as const) {
    if (n > 0 && n % SIZE_UNIT[u] === 0) return `${n / SIZE_UNIT[u]}${u.toUpperCase()}iB`;
  }
  return String(n);
}

/** The inverse of durationOf, in the largest unit that keeps the value exact. */
export function formatDuration(ms: number): string {
  for (const u of ['w', 'd', 'h', 'm', 's'] as const) {
    if (ms > 0 && ms % DURATION_UNIT[u] === 0) return `${ms / DURATION_UNIT[u]}${u}`;
  }
  return ms === 0 ? '0' : `${ms}ms`;
}

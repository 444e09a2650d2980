import crypto from 'node:crypto';
import { VriftError } from '../ipc/errors.js';

// A remote cache URL as users give it (`remote_url`, VRIFT_REMOTE, `vrift run --cache-remote`):
// checked where it is given, so a typo is an error there instead of a daemon that restarts
// on every build and says why only in its log.

export const REMOTE_FORMS = 'http(s)://host[:port][/prefix] (user:password@ allowed) or s3://bucket[/prefix]';

/** Why `raw` is not a remote URL, or undefined when it is one ('' = no remote). */
export function remoteUrlProblem(raw: string): string | undefined {
  if (raw === '') return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'not a URL';
  }
  if (u.protocol === 'http:' || u.protocol === 'https:') {
    if (!u.hostname) return 'no host';
    if (u.search || u.hash) return 'a query or fragment has no meaning here';
    return undefined;
  }
  if (u.protocol === 's3:') return /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(raw) ? undefined : 'not a valid bucket name';
  return `unsupported scheme ${u.protocol}`;
}

export function parseRemoteUrl(raw: unknown, where: string): string {
  const why = typeof raw === 'string' ? remoteUrlProblem(raw) : 'not a string';
  if (why !== undefined)
    throw new VriftError('ECONFIG', `${where}: ${JSON.stringify(redactUrl(String(raw)))} is not a remote URL (${why}); use ${REMOTE_FORMS}`, {
      fields: { where },
    });
  return raw as string;
}

/** The URL as it may be printed: credentials removed, nothing else changed. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (!u.username && !u.password) return raw;
    u.username = '';
    u.password = '';
    return u.href;
  } catch {
    return raw.replace(/\/\/[^@/]*@/, '//');
  }
}

/**
 * Names one remote with its credentials (the URL's user:password and the token) without
 * revealing them: two settings that differ only in a password give different identities.
 */
export function remoteIdentity(url: string, token: string): string {
  if (url === '') return '';
  const norm = url.replace(/\/+$/, '');
  return crypto.createHash('sha256').update(`${norm}\n${token}`).digest('hex').slice(0, 16);
}

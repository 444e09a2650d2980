import crypto from 'node:crypto';
import fs from 'node:fs';
import { VriftError } from '../../ipc/errors.js';

export type Access = 'ro' | 'rw';
export type AuthResult = { ok: true; who: string } | { ok: false; status: 401 | 403 };

/** Tokens file: one `token ro|rw` a line; `#` starts a comment. */
export function parseTokens(text: string, where = 'tokens file'): Map<string, Access> {
  const m = new Map<string, Access>();
  text.split('\n').forEach((line, i) => {
    const l = line.replace(/#.*/, '').trim();
    if (!l) return;
    const parts = l.split(/\s+/);
    if (parts.length !== 2 || (parts[1] !== 'ro' && parts[1] !== 'rw') || parts[0].length < 8) {
      throw new VriftError('ECONFIG', `${where}:${i + 1}: expected "<token of 8+ characters> ro|rw"`, { fields: { line: i + 1 } });
    }
    m.set(parts[0], parts[1]);
  });
  return m;
}

export function loadTokens(file: string): Map<string, Access> {
  return parseTokens(fs.readFileSync(file, 'utf8'), file);
}

function presented(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value = ''] = header.trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme)) return value;
  if (/^basic$/i.test(scheme)) {
    const dec = Buffer.from(value, 'base64').toString('utf8');
    const colon = dec.indexOf(':');
    return colon < 0 ? dec : dec.slice(colon + 1); // the password is the token; the user name is free
  }
  return undefined;
}

// Without a tokens file everyone may read and write (the server then binds loopback only
// unless told otherwise). A token is identified in logs by a short hash, never itself.
export class Authorizer {
  constructor(
    private readonly tokens: Map<string, Access> | undefined,
    private readonly anonymousRead: boolean,
  ) {}

  check(header: string | undefined, write: boolean): AuthResult {
    if (!this.tokens) return { ok: true, who: 'anonymous' };
    const tok = presented(header);
    const access = tok === undefined ? undefined : this.lookup(tok);
    if (!access) return !write && this.anonymousRead && tok === undefined ? { ok: true, who: 'anonymous' } : { ok: false, status: 401 };
    if (write && access !== 'rw') return { ok: false, status: 403 };
    return { ok: true, who: crypto.createHash('sha256').update(tok!).digest('hex').slice(0, 8) };
  }

  private lookup(tok: string): Access | undefined {
    // Constant-time over the candidates, so response timing does not leak token prefixes.
    let found: Access | undefined;
    const a = crypto.createHash('sha256').update(tok).digest();
    for (const [t, acc] of this.tokens!) {
      if (crypto.timingSafeEqual(a, crypto.createHash('sha256').update(t).digest())) found = acc;
    }
    return found;
  }
}

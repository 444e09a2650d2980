import { createHash } from 'node:crypto';

// config: what the running daemon applies of the per-instance settings (read when it
// started), for `vrift config` to flag what it does not apply yet. The remote token is
// never sent: only a fingerprint to compare with (`token_fp`). The daemon also forgets its
// cached project files, so a velo.toml just edited applies from the next compile.
export interface ConfigRequest {
  t: 'config';
}
export interface ConfigReply {
  t: 'config';
  pid: number;
  config: Record<string, unknown>;
  token_fp: string;
  started_ms: number;
}

export function parseConfig(_m: Record<string, unknown>): ConfigRequest {
  return { t: 'config' };
}

/** What `vrift config` compares a token with: never the token itself. */
export function tokenFingerprint(token: string): string {
  return token ? createHash('sha256').update(token).digest('hex').slice(0, 16) : '';
}

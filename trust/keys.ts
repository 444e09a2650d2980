import crypto from 'node:crypto';
import { VriftError } from '../ipc/errors.js';

// Keys as Nix writes them, so a team that already has Nix keys can reuse the habit: a public
// key is one line `name:base64(32-byte raw key)`, a secret key `name:base64(64 bytes: seed
// then public key)` (`nix key generate-secret` output is accepted as it is). The name travels
// with every signature and is what logs and `vrift peers` show; the key itself decides.

export const KEY_NAME_FORMS = '1-64 characters of A-Z a-z 0-9 . _ - + @ (no colon, comma or space)';
const NAME = /^[A-Za-z0-9._@+-]{1,64}$/;

export interface PublicKey {
  readonly name: string;
  readonly key: crypto.KeyObject;
  /** `name:base64` as users write it in `trusted_keys`. */
  readonly line: string;
  /** Short hex id of the key bytes (not the name): for logs, mDNS TXT records, file names. */
  readonly fingerprint: string;
}

export interface SigningKey extends PublicKey {
  readonly privateKey: crypto.KeyObject;
}

export function keyNameProblem(name: string): string | undefined {
  return NAME.test(name) ? undefined : `key name ${JSON.stringify(name)} is not ${KEY_NAME_FORMS}`;
}

function fingerprintOf(raw: Buffer): string {
  return crypto.createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function publicFromRaw(name: string, raw: Buffer): PublicKey {
  const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  return { name, key, line: `${name}:${raw.toString('base64')}`, fingerprint: fingerprintOf(raw) };
}

function splitLine(text: string, where: string): [string, Buffer] {
  const line = text.trim();
  const colon = line.indexOf(':');
  const name = colon < 0 ? '' : line.slice(0, colon);
  const b64 = line.slice(colon + 1);
  const problem = colon < 0 ? 'expected name:base64' : (keyNameProblem(name) ?? (/^[A-Za-z0-9+/]+={0,2}$/.test(b64) ? undefined : 'the key is not base64'));
  if (problem) throw new VriftError('ECONFIG', `${where}: ${problem}`, { fields: { where } });
  return [name, Buffer.from(b64, 'base64')];
}

/** One `name:base64` public key line (trusted_keys, `vrift keys show`). */
export function parsePublicKey(text: string, where = 'public key'): PublicKey {
  const [name, raw] = splitLine(text, where);
  if (raw.length !== 32) throw new VriftError('ECONFIG', `${where}: an ed25519 public key is 32 bytes, this one ${raw.length}`, { fields: { where } });
  return publicFromRaw(name, raw);
}

/**
 * A `name:base64` secret key: 64 bytes, seed then public key. A 32-byte seed alone is not
 * taken, so a public key line given by mistake cannot pass for a secret.
 */
export function parseSigningKey(text: string, where = 'signing key'): SigningKey {
  const [name, raw] = splitLine(text, where);
  if (raw.length !== 64)
    throw new VriftError('ECONFIG', `${where}: an ed25519 secret key is 64 bytes, this one ${raw.length}${raw.length === 32 ? ' (a public key?)' : ''}`, {
      fields: { where },
    });
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new VriftError('ECONFIG', `${where}: not an ed25519 secret key`, { cause: e, fields: { where } });
  }
  const pub = Buffer.from(crypto.createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url');
  if (!raw.subarray(32).equals(pub)) throw new VriftError('ECONFIG', `${where}: the public half does not belong to the secret seed`, { fields: { where } });
  return { ...publicFromRaw(name, pub), privateKey };
}

// The raw 32-byte seed wrapped in its fixed PKCS#8 header (RFC 8410), the one raw form
// every Node version since 12 imports.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A new key pair; `secretLine` is what goes (mode 0600) into the key file. */
export function generateSigningKey(name: string): { key: SigningKey; secretLine: string } {
  const problem = keyNameProblem(name);
  if (problem) throw new VriftError('ECONFIG', problem, { fields: { name } });
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const raw = Buffer.concat([Buffer.from(jwk.d!, 'base64url'), Buffer.from(jwk.x!, 'base64url')]);
  const secretLine = `${name}:${raw.toString('base64')}`;
  return { key: parseSigningKey(secretLine), secretLine };
}

/** `trusted_keys` as given (array from TOML, or VRIFT_TRUSTED_KEYS split on commas). */
export function parseTrustedKeys(lines: readonly string[], where = 'trusted_keys'): PublicKey[] {
  return lines
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l, i) => parsePublicKey(l, `${where}[${i}]`));
}

/** How logs name a set of keys: `name (fingerprint)`, comma-separated. */
export function describeKeys(keys: readonly PublicKey[]): string {
  return keys.length === 0 ? 'none' : keys.map((k) => `${k.name} (${k.fingerprint})`).join(', ');
}

import crypto from 'node:crypto';
import { describeKeys, type PublicKey, type SigningKey } from './keys.js';

// A signed action-cache entry: the daemon that made it signs, and the signature travels in
// the entry's own bytes, so the local store, the remote (plain values, bundles, packs) and
// peers all carry it without knowing it is there.
//
// Form: MAGIC "VRS1", u8 name length, the signer's key name, 64-byte ed25519 signature, then
// the payload (the front-end's msgpack value, unchanged). A payload is a msgpack map, never
// the byte 'V', so an unsigned entry from before (or from a daemon without a key) reads as
// itself.
//
// What is signed (the fingerprint, version 1): "vrift-entry/1\n" + action key + "\n" +
// payload. The payload is everything the entry makes appear: outputs' paths, digests, sizes
// and modes, exit code, stdout and stderr, the result a manifest points at. Signing its bytes
// rather than a chosen list of its fields leaves no field outside the signature, whatever a
// front-end stores now or later; the action key inside means a genuine entry cannot be
// replayed under another key.

export const SIGNED_MAGIC = Buffer.from('VRS1');
const FINGERPRINT_VERSION = 'vrift-entry/1';
const SIG_SIZE = 64;

export interface OpenedEntry {
  payload: Buffer;
  /** Absent for an unsigned entry. */
  signer?: string;
  signature?: Buffer;
}

export type EntryVerdict = { ok: true; signer: string; payload: Buffer; reason: string } | { ok: false; signer?: string; reason: string };

function fingerprint(actionKey: string, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${FINGERPRINT_VERSION}\n${actionKey}\n`), payload]);
}

export function isSigned(stored: Buffer): boolean {
  return stored.length > SIGNED_MAGIC.length && stored.subarray(0, SIGNED_MAGIC.length).equals(SIGNED_MAGIC);
}

/** The entry as stored and shipped: `payload` with `key`'s signature over (actionKey, payload). */
export function signEntry(key: SigningKey, actionKey: string, payload: Buffer): Buffer {
  const name = Buffer.from(key.name);
  const sig = crypto.sign(null, fingerprint(actionKey, payload), key.privateKey);
  return Buffer.concat([SIGNED_MAGIC, Buffer.from([name.length]), name, sig, payload]);
}

/** Splits a stored entry, without checking the signature; undefined when the signed form is malformed. */
export function openEntry(stored: Buffer): OpenedEntry | undefined {
  if (!isSigned(stored)) return { payload: stored };
  const at = SIGNED_MAGIC.length;
  const n = stored[at];
  const sigAt = at + 1 + n;
  if (n === 0 || stored.length < sigAt + SIG_SIZE) return undefined;
  return { signer: stored.toString('utf8', at + 1, sigAt), signature: stored.subarray(sigAt, sigAt + SIG_SIZE), payload: stored.subarray(sigAt + SIG_SIZE) };
}

/**
 * Whether `stored`, found under `actionKey`, was signed by one of `trusted`. The reason names
 * the signer and the trusted keys, for a log line that says what to fix.
 */
export function verifyEntry(actionKey: string, stored: Buffer, trusted: readonly PublicKey[]): EntryVerdict {
  const e = openEntry(stored);
  if (!e) return { ok: false, reason: 'malformed signed entry' };
  if (!e.signer || !e.signature) return { ok: false, reason: `unsigned; trusted keys: ${describeKeys(trusted)}` };
  const candidates = trusted.filter((k) => k.name === e.signer);
  if (candidates.length === 0)
    return { ok: false, signer: e.signer, reason: `signed by ${JSON.stringify(e.signer)}, which is not a trusted key; trusted keys: ${describeKeys(trusted)}` };
  const fp = fingerprint(actionKey, e.payload);
  const key = candidates.find((k) => crypto.verify(null, fp, k.key, e.signature!));
  if (!key)
    return {
      ok: false,
      signer: e.signer,
      reason: `signature by ${JSON.stringify(e.signer)} does not match this entry under this key (tampered, or another entry's signature); trusted keys: ${describeKeys(trusted)}`,
    };
  return { ok: true, signer: `${key.name} (${key.fingerprint})`, payload: e.payload, reason: 'signed by a trusted key' };
}

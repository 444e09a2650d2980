import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VriftError } from '../ipc/errors.js';
import { generateSigningKey, parseSigningKey, type SigningKey } from './keys.js';

// The instance's own key pair lives in $VRIFT_HOME/keys/: `signing.key` (the secret line,
// mode 0600, in a 0700 directory) and `signing.pub` (the public line, what `vrift keys show`
// prints). Both the CLI and the daemon use this file, so it imports neither.

export const SECRET_FILE = 'signing.key';
export const PUBLIC_FILE = 'signing.pub';

export function keysDir(home: string): string {
  return path.join(home, 'keys');
}

export function defaultSigningKeyPath(home: string): string {
  return path.join(keysDir(home), SECRET_FILE);
}

/** user@host, cut to what a key name may hold. */
export function defaultKeyName(): string {
  let user = 'vrift';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (some containers): keep the generic name
  }
  return `${user}@${os.hostname()}`.replace(/[^A-Za-z0-9._@+-]/g, '-').slice(0, 64);
}

/**
 * Writes a new key pair into `dir`. Without `force`, an existing secret key is an error
 * (it may be the one the team trusts); the secret is created exclusively, so two daemons
 * starting at once cannot each write their own.
 */
export function writeKeyPair(dir: string, name: string, force: boolean): SigningKey {
  const { key, secretLine } = generateSigningKey(name);
  const secret = path.join(dir, SECRET_FILE);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Written whole to a temp file (mode 0600 from the first byte), then published in one
  // step: a rename replaces, a hard link fails when the name exists. A reader never sees
  // half a key.
  const tmp = `${secret}.${process.pid}.${Date.now()}.tmp`;
  try {
    fs.writeFileSync(tmp, secretLine + '\n', { mode: 0o600, flag: 'wx' });
    if (force) fs.renameSync(tmp, secret);
    else fs.linkSync(tmp, secret);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new VriftError('ECONFIG', `${secret} already exists (the key your team may trust); --force replaces it`, { cause: e, fields: { path: secret } });
    }
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fs.writeFileSync(path.join(dir, PUBLIC_FILE), key.line + '\n', { mode: 0o644 });
  return key;
}

export function readSigningKey(file: string): SigningKey {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new VriftError('ECONFIG', `cannot read signing key ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`, { cause: e, fields: { path: file } });
  }
  return parseSigningKey(text, file);
}

/**
 * The key at `file`, generated first when it is the default path and absent (the daemon's
 * first start). A configured path that is missing stays an error: it names a key the user
 * meant, and another one would sign under a name nobody trusts.
 */
export function loadOrCreateSigningKey(file: string, isDefault: boolean, name = defaultKeyName()): SigningKey {
  if (isDefault && !fs.existsSync(file)) {
    try {
      return writeKeyPair(path.dirname(file), name, false);
    } catch (e) {
      if (!(e instanceof VriftError)) throw e; // EEXIST: another process made it first
    }
  }
  return readSigningKey(file);
}

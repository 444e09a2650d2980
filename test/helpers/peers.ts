import path from 'node:path';
import { writeKeyPair } from '../../trust/key-file.js';
import type { Instance } from './instance.js';

/**
 * The port the instance's daemon serves its store to peers on (started if it is not): it binds
 * port 0 (VRIFT_PEER_PORT unset or 0) and says which port it got in its stats.
 */
export async function peerPort(v: Instance): Promise<number> {
  const port = ((await v.stats()) as { peers?: { port?: number } }).peers?.port;
  if (typeof port !== 'number' || port <= 0) throw new Error(`no peer port in the stats of ${v.home}: are peers on?`);
  return port;
}

/** Gives the instance at `home` its signing key now (the daemon would make one at its first start); returns the public line. */
export function keyFor(home: string, name: string): string {
  return writeKeyPair(path.join(home, 'keys'), name, false).line;
}

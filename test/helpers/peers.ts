import net from 'node:net';
import path from 'node:path';
import { writeKeyPair } from '../../trust/key-file.js';

/** A TCP port free right now on `host` (for a daemon told which port to serve peers on). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Gives the instance at `home` its signing key now (the daemon would make one at its first start); returns the public line. */
export function keyFor(home: string, name: string): string {
  return writeKeyPair(path.join(home, 'keys'), name, false).line;
}

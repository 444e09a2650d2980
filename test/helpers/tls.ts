import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ensureTool } from './remote.js';

/** A CA made for the test, and a server certificate for 127.0.0.1 it signed: files in `dir`. */
export function certificates(dir: string): { ca: string; cert: string; key: string } {
  const openssl = ensureTool('openssl', 'openssl');
  const f = (n: string) => path.join(dir, n);
  const x = (args: string[]) => execFileSync(openssl, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir });
  x([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=vrift test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  ]);
  x(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('srv.key'), '-out', f('srv.csr')]);
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  x([
    'x509',
    '-req',
    '-in',
    f('srv.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    f('ext.cnf'),
    '-out',
    f('srv.pem'),
  ]);
  return { ca: f('ca.pem'), cert: f('srv.pem'), key: f('srv.key') };
}

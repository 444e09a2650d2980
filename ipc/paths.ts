import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VriftError } from './errors.js';

// One instance = one VRIFT_HOME: config, store, runtime dir (socket, lock), logs, stats.
export interface InstancePaths {
  home: string;
  runDir: string; // mode 0700: only the user reaches the socket
  socket: string; // unix socket path (zeromq endpoint is ipc://<socket>)
  endpoint: string;
  lock: string; // held (flock) by the running daemon for its whole life
  logFile: string;
  statsFile: string;
  userConfig: string;
  defaultStore: string;
  shimsDir: string;
}

export function instancePaths(env: NodeJS.ProcessEnv = process.env): InstancePaths {
  const home = path.resolve(env.VRIFT_HOME || path.join(env.HOME || os.homedir(), '.vrift'));
  const runDir = path.join(home, 'run');
  const socket = path.join(runDir, 'vriftd.sock');
  return {
    home,
    runDir,
    socket,
    endpoint: `ipc://${socket}`,
    lock: path.join(runDir, 'vriftd.lock'),
    logFile: path.join(home, 'log', 'vriftd.ndjson'),
    statsFile: path.join(home, 'stats.json'),
    userConfig: path.join(home, 'config.toml'),
    defaultStore: path.join(home, 'l2'),
    shimsDir: path.join(home, 'shims'),
  };
}

// sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
export const MAX_SOCKET_PATH = 107;

/** Makes the runtime dir; a VRIFT_HOME that cannot hold it, or whose socket path is too
 * long, is an ESTART with a one-line reason. */
export function prepareRunDir(paths: InstancePaths): void {
  const fail = (why: string): never => {
    throw new VriftError('ESTART', `cannot use VRIFT_HOME ${paths.home}: ${why}`);
  };
  if (Buffer.byteLength(paths.socket) > MAX_SOCKET_PATH) {
    fail(
      `its socket path ${paths.socket} is ${Buffer.byteLength(paths.socket)} bytes, more than a unix socket takes (${MAX_SOCKET_PATH}); set a shorter VRIFT_HOME`,
    );
  }
  try {
    fs.mkdirSync(paths.runDir, { recursive: true, mode: 0o700 });
    fs.chmodSync(paths.runDir, 0o700);
    fs.accessSync(paths.home, fs.constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'EEXIST') fail('it, or a directory above it, is a file');
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') fail('it is not writable');
    fail((e as Error).message);
  }
}

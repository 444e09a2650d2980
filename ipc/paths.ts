import os from 'node:os';
import path from 'node:path';

// One instance = one VRIFT_HOME: config, store, runtime dir (socket, lock), logs, stats.
export interface InstancePaths {
  home: string;
  runDir: string;      // mode 0700: only the user reaches the socket
  socket: string;      // unix socket path (zeromq endpoint is ipc://<socket>)
  endpoint: string;
  lock: string;        // held (flock) by the running daemon for its whole life
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

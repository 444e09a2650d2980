// shutdown: the daemon answers ok, flushes stats, releases its lock and exits.
export interface ShutdownRequest { t: 'shutdown' }
export function parseShutdown(): ShutdownRequest {
  return { t: 'shutdown' };
}

// shutdown: the daemon answers ok, flushes stats, releases its lock and exits.
export interface ShutdownRequest {
  t: 'shutdown';
}
export function parseShutdown(_m: Record<string, unknown>): ShutdownRequest {
  return { t: 'shutdown' };
}

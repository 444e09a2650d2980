import fs from 'node:fs';
import path from 'node:path';

// Structured NDJSON logs: one object a line with time, level, channel and what triggered it.
export type Level = 'debug' | 'info' | 'warn' | 'error';
export interface Logger {
  log(level: Level, channel: string, msg: string, fields?: Record<string, unknown>): void;
  child(channel: string): ChannelLogger;
  close(): Promise<void>;
}
export interface ChannelLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

function errFields(fields?: Record<string, unknown>): Record<string, unknown> | undefined {
  if (!fields) return fields;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = v instanceof Error ? { message: v.message, code: (v as { code?: unknown }).code, stack: v.stack } : v;
  }
  return out;
}

class BaseLogger implements Logger {
  constructor(
    private readonly write: (line: string) => void,
    private readonly min: Level,
    private readonly onClose: () => Promise<void>,
  ) {}
  log(level: Level, channel: string, msg: string, fields?: Record<string, unknown>): void {
    if (ORDER[level] < ORDER[this.min]) return;
    this.write(JSON.stringify({ time: new Date().toISOString(), level, channel, msg, ...errFields(fields) }) + '\n');
  }
  child(channel: string): ChannelLogger {
    return {
      debug: (m, f) => this.log('debug', channel, m, f),
      info: (m, f) => this.log('info', channel, m, f),
      warn: (m, f) => this.log('warn', channel, m, f),
      error: (m, f) => this.log('error', channel, m, f),
    };
  }
  close(): Promise<void> {
    return this.onClose();
  }
}

export function fileLogger(file: string, min: Level = 'info'): Logger {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const stream = fs.createWriteStream(file, { flags: 'a' });
  stream.on('error', () => {}); // a full disk must not take the daemon down
  return new BaseLogger(
    (l) => stream.write(l),
    min,
    () => new Promise((r) => stream.end(r)),
  );
}

export function memoryLogger(lines: string[] = [], min: Level = 'debug'): Logger & { lines: string[] } {
  const l = new BaseLogger(
    (x) => lines.push(x),
    min,
    async () => {},
  ) as BaseLogger & { lines: string[] };
  l.lines = lines;
  return l;
}

export const nullLogger: Logger = new BaseLogger(
  () => {},
  'error',
  async () => {},
);

import fs from 'node:fs';
import path from 'node:path';
import type { ChannelLogger } from '../log.js';

// The compiles live mode knows: for each C/C++ compile a build made (by its directory, compiler
// and arguments), the environment its key and its run need, and the inputs its last entry
// named with their hashes then. Bounded (the least recently seen go first) and kept in one
// JSON file under VRIFT_HOME, written a little after a change and at close, so that a
// restarted daemon watches and warms the same compiles. The file is a cache: one that cannot
// be read or does not have the expected shape is logged and the journal starts empty.

export interface LiveCommand {
  cwd: string;
  exe: string;
  args: string[];
  env: Record<string, string>;
  /** Absolute paths of the inputs its entry named (source first). */
  inputs: string[];
  /** How long its last compile took, ms (0: not known). */
  ms: number;
  /** When a build last made it (epoch ms). */
  seen: number;
}

interface FileV1 {
  v: 1;
  files: [string, string][];
  commands: (Omit<LiveCommand, 'inputs'> & { inputs: number[] })[];
}

export const commandId = (cwd: string, exe: string, args: readonly string[]) => [cwd, exe, ...args].join('\u0000');

const SAVE_AFTER_MS = 2000;

export class Journal {
  private commands = new Map<string, LiveCommand>(); // least recently seen first
  private users = new Map<string, Set<string>>(); // input -> ids of the commands that read it
  private hashes = new Map<string, string>(); // input -> its hash as last recorded
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;

  constructor(
    private readonly file: string,
    private readonly log: ChannelLogger,
    private readonly max = 20_000,
  ) {}

  /** Reads the file; a missing one is an empty journal, a bad one too (logged). */
  load(): void {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn('live journal unreadable: starting empty', { err, file: this.file });
      return;
    }
    try {
      const doc = JSON.parse(text) as FileV1;
      if (doc?.v !== 1 || !Array.isArray(doc.files) || !Array.isArray(doc.commands)) throw new Error('not a v1 journal');
      const files = doc.files.map((f) => {
        if (!Array.isArray(f) || typeof f[0] !== 'string' || typeof f[1] !== 'string') throw new Error('bad file row');
        return f;
      });
      for (const c of doc.commands) {
        const ok =
          typeof c?.cwd === 'string' &&
          typeof c.exe === 'string' &&
          Array.isArray(c.args) &&
          c.args.every((a) => typeof a === 'string') &&
          typeof c.env === 'object' &&
          c.env !== null &&
          Object.values(c.env).every((v) => typeof v === 'string') &&
          Array.isArray(c.inputs) &&
          c.inputs.every((i) => Number.isInteger(i) && i >= 0 && i < files.length) &&
          typeof c.ms === 'number' &&
          typeof c.seen === 'number';
        if (!ok) throw new Error('bad command row');
      }
      for (const c of doc.commands) {
        const inputs = c.inputs.map((i) => files[i]);
        this.put({ ...c, inputs: inputs.map(([f]) => f) }, inputs);
      }
      this.dirty = false;
    } catch (err) {
      this.log.warn('live journal corrupt: starting empty', { err: (err as Error).message, file: this.file });
      this.commands.clear();
      this.users.clear();
      this.hashes.clear();
    }
  }

  get size(): number {
    return this.commands.size;
  }

  get files(): number {
    return this.users.size;
  }

  get(id: string): LiveCommand | undefined {
    return this.commands.get(id);
  }

  /** The ids of the commands that read `file`. */
  usersOf(file: string): ReadonlySet<string> | undefined {
    return this.users.get(file);
  }

  /** The directories compiles ran in. */
  cwds(): Set<string> {
    return new Set([...this.commands.values()].map((c) => c.cwd));
  }

  /** Every input with its hash as last recorded. */
  recorded(): IterableIterator<[string, string]> {
    return this.hashes.entries();
  }

  /**
   * A compile a build made (or warming redid): its command, and its entry's inputs as
   * [absolute path, hash] when known (a compile seen only as run keeps the inputs it had).
   */
  record(cmd: Omit<LiveCommand, 'inputs' | 'ms'> & { ms?: number }, inputs?: [string, string][]): void {
    const id = commandId(cmd.cwd, cmd.exe, cmd.args);
    const old = this.commands.get(id);
    // The same inputs as last time (a hit): no relinking.
    if (old && inputs && inputs.length === old.inputs.length && inputs.every(([f], i) => f === old.inputs[i])) {
      for (const [f, h] of inputs) this.hashes.set(f, h);
      inputs = undefined;
    }
    const next: LiveCommand = { ...cmd, ms: cmd.ms ?? old?.ms ?? 0, inputs: inputs ? inputs.map(([f]) => f) : (old?.inputs ?? []) };
    if (old && inputs) this.unlink(id, old);
    this.commands.delete(id);
    this.put(next, inputs, id, !!old && !inputs);
    while (this.commands.size > this.max) {
      const [oldest, c] = this.commands.entries().next().value as [string, LiveCommand];
      this.commands.delete(oldest);
      this.unlink(oldest, c);
    }
    this.changed();
  }

  /** How long the command's compile took. */
  setMs(id: string, ms: number): void {
    const c = this.commands.get(id);
    if (!c) return;
    c.ms = ms;
    this.changed();
  }

  private put(c: LiveCommand, inputs: [string, string][] | undefined, id = commandId(c.cwd, c.exe, c.args), linked = false): void {
    this.commands.set(id, c);
    if (linked) return;
    for (const f of c.inputs) {
      let u = this.users.get(f);
      if (!u) this.users.set(f, (u = new Set()));
      u.add(id);
    }
    for (const [f, h] of inputs ?? []) this.hashes.set(f, h);
  }

  private unlink(id: string, c: LiveCommand): void {
    for (const f of c.inputs) {
      const u = this.users.get(f);
      if (!u) continue;
      u.delete(id);
      if (u.size === 0) {
        this.users.delete(f);
        this.hashes.delete(f);
      }
    }
  }

  private changed(): void {
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.save();
    }, SAVE_AFTER_MS);
    this.timer.unref();
  }

  /** Writes the file now (temp file, then rename) if anything changed. */
  save(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const index = new Map<string, number>();
    const files: [string, string][] = [];
    const commands: FileV1['commands'] = [];
    for (const c of this.commands.values()) {
      const ids = c.inputs.map((f) => {
        let i = index.get(f);
        if (i === undefined) {
          i = files.length;
          index.set(f, i);
          files.push([f, this.hashes.get(f) ?? '']);
        }
        return i;
      });
      commands.push({ ...c, inputs: ids });
    }
    const doc: FileV1 = { v: 1, files, commands };
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      fs.writeFileSync(tmp, JSON.stringify(doc));
      fs.renameSync(tmp, this.file);
    } catch (err) {
      this.log.warn('live journal not saved', { err, file: this.file });
      fs.rmSync(tmp, { force: true });
    }
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.save();
  }
}

import path from 'node:path';
import { LRUCache } from 'lru-cache';
import type { ChannelLogger } from '../../log.js';
import { STREAM_MIN } from '../../store/blob-stream.js';
import type { StoreLike } from '../../store/contract.js';
import type { Result } from '../entries.js';
import type { GccCompile } from '../gcc/args.js';
import type { LazyOutputs } from '../lazy-outputs.js';
import { writeFileAtomic } from '../materialize.js';
import { Relativizer } from '../relativize.js';
import type { CcEntries } from './entry-cache.js';
import { depfileText } from './outputs.js';
import type { Outcome } from './types.js';

// Depfiles rendered for hits, by result and the call's depfile options: a rebuild of the
// same tree writes the same text again.
const DEPFILE_CACHE_BYTES = 8 * 1024 * 1024;

/** A result turned into a hit for one call: its object and depfile where the call wants them. */
export class Hits {
  private depfiles = new LRUCache<string, Buffer>({ maxSize: DEPFILE_CACHE_BYTES, sizeCalculation: (b) => b.length + 64 });

  constructor(
    private readonly d: { store: StoreLike; log: ChannelLogger; lazy?: LazyOutputs },
    private readonly entries: CcEntries,
  ) {}

  // Puts a result's outputs where this call wants them (or hands them to a shim that writes
  // them itself); undefined when the blob is gone.
  async materialize(resultKey: string, result: Result, parsed: GccCompile, cwd: string, shimWrites: boolean): Promise<Outcome | undefined> {
    const obj = result.outputs.find((o) => o.role === 'obj');
    const objAbs = path.resolve(cwd, parsed.output);
    const files: [string, Buffer][] = [];
    let bytes: number | undefined;
    if (obj && this.d.lazy && (await this.d.lazy.register(objAbs, obj))) {
      // Inside a mounted DIR: the overlay shows it, its bytes are read from the store when opened.
      bytes = obj.size;
    } else if (obj && obj.size >= STREAM_MIN) {
      // Large: streamed from the store (or the remote) straight into place, never held whole.
      try {
        bytes = await this.d.store.copyBlobTo(obj.digest, objAbs, undefined, obj.size);
      } catch (err) {
        this.d.log.debug('materialize failed', { err, output: parsed.output });
        return { kind: 'pass', reason: 'materialize_failed' };
      }
    } else {
      const data = obj && (await this.d.store.getBlob(obj.digest));
      if (data) files.push([objAbs, data]);
      bytes = data?.length;
    }
    if (bytes === undefined) {
      this.entries.forgetResult(resultKey); // evicted or corrupt blob: a miss, and the next store heals it
      return undefined;
    }
    if (parsed.depfile) {
      const d = parsed.depfile;
      const k = [resultKey, cwd, d.mode, d.phony, d.defaultTarget, parsed.compiler, ...d.targets.map((t) => (t.quoted ? 'Q' : 'T') + t.value)].join('\u0000');
      let text = this.depfiles.get(k);
      if (!text) {
        const deps = result.deps.filter((_, i) => d.mode === 'MD' || result.sys[i] !== '1').map((form) => Relativizer.toPath(form, cwd));
        text = depfileText(parsed, deps);
        this.depfiles.set(k, text);
      }
      files.push([path.resolve(cwd, d.file), text]);
    }
    if (shimWrites) return { kind: 'hit', out: result.out, err: result.err, code: 0, bytes, files };
    try {
      for (const [f, d] of files) writeFileAtomic(f, d);
    } catch (err) {
      // e.g. the output directory does not exist: let the compiler fail the way it would.
      this.d.log.debug('materialize failed', { err, output: parsed.output });
      return { kind: 'pass', reason: 'materialize_failed' };
    }
    return { kind: 'hit', out: result.out, err: result.err, code: 0, bytes };
  }

  close(): void {
    this.depfiles.clear();
  }
}

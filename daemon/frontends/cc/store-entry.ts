import path from 'node:path';
import { chunkSearcher } from '../../store/blob-stream.js';
import type { Attach } from '../../store/contract.js';
import { absentItem, encodeEntry, type ManifestEntry, type Result } from '../entries.js';
import { preprocessHash } from '../preprocess.js';
import { embedsAnchor, Relativizer } from '../relativize.js';
import type { Done, Finish } from '../types.js';
import type { Inputs } from './inputs.js';
import { ppKeyOf, resultKeyOf } from './keys.js';
import type { CcParts, CcPending } from './types.js';

// A compile's cache entry: its result (object, output, dependency list) under the result key,
// and an entry for it in the direct key's manifest. Built here, written through the
// write-behind store; `write` settles when both are written.
export async function storeEntry(
  cx: Pick<CcParts, 'd' | 'entries' | 'writes'>,
  p: CcPending,
  done: Done,
  obj: Buffer | undefined,
  inputs: Inputs,
): Promise<Finish> {
  const { d, entries } = cx;
  const { parsed, cwd, rel } = p;
  const { files, absent, stamps, date, needPp } = inputs;
  const objAbs = path.resolve(cwd, parsed.output);
  const anchor = rel.anchor();
  let big: { digest: string; size: number } | undefined;
  let bigEmbeds = false;
  if (!obj) {
    const seen = chunkSearcher(anchor[1]);
    try {
      big = await d.store.putBlobFile(objAbs, { onChunk: seen.feed });
    } catch (err) {
      d.log.warn('large object not stored', { output: parsed.output, err });
      return { stored: false, reason: 'store_failed' };
    }
    bigEmbeds = anchor[1] === '/' || seen.found();
  }
  const embedded = (obj ? embedsAnchor(obj, anchor[1]) : bigEmbeds) || embedsAnchor(done.out, anchor[1]) || embedsAnchor(done.err, anchor[1]);
  const entryAnchor = embedded ? anchor : null;
  const resultKey = resultKeyOf('vrift-cc-result-v1', p.directKey, files, entryAnchor, date, stamps);

  const entry: ManifestEntry = {
    files: files.flat(),
    absent: [...absent].map(([dir, ns]) => absentItem(dir, ns)),
    anchor: entryAnchor,
    date,
    stamps,
    result: resultKey,
    time: p.start,
  };
  const storeResult = async (key: string): Promise<Attach> => {
    const { digest, size } = big ?? { digest: await d.store.putBlob(obj!), size: obj!.length };
    const result: Result = { v: 2, outputs: [{ role: 'obj', digest, size }], out: done.out, err: done.err, deps: inputs.depForms, sys: inputs.sys };
    const buf = encodeEntry(result);
    await d.store.putEntry(key, buf);
    entries.rememberResult(key, result);
    return { entries: [key], blobs: big ? [] : [digest] };
  };
  const write = (async () => {
    if (p.ppKey) return void (await storeResult(p.ppKey));
    if (!needPp) {
      const attach = await storeResult(resultKey);
      return entries.addToManifest(p.directKey, entry, false, attach);
    }
    // Direct mode can't vouch for this include set: from now on this key goes through the
    // preprocessor. Store this compile under its preprocessed hash if the inputs the
    // preprocessor reads now are still the ones the compiler read.
    await entries.addToManifest(p.directKey, entry, true);
    const ppHash = await preprocessHash(p.exe, p.args, cwd, p.env);
    const unchanged = files.every(([f, hsh]) => d.hashes.get(Relativizer.toAbs(f, cwd))?.hash === hsh);
    if (ppHash && unchanged) await storeResult(ppKeyOf(p.directKey, ppHash));
  })();
  cx.writes.track(p.directKey, write);
  d.observe?.({
    kind: 'stored',
    cwd,
    exe: p.exe,
    args: p.args,
    env: p.env,
    output: parsed.output,
    directKey: p.directKey,
    result: p.ppKey ?? resultKey,
    inputs: files.map(([f, h]) => [Relativizer.toAbs(f, cwd), h]),
  });
  return { stored: true, bytes: obj?.length ?? big!.size, write };
}

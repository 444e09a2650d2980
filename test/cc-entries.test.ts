import test from './helpers/test.js';
import { absentItem, absentParts, decodeManifest, decodeResult, encodeEntry, ownBuffer, type Manifest } from '../daemon/frontends/entries.js';
import { REL_MARK } from '../daemon/frontends/relativize.js';

// The in-memory (and on-disk) shape of C/C++ manifests and results: flat lists, strings
// shared, nothing that pins a pool slab; anything malformed reads as absent (a miss).

test('absent items round-trip, whatever the directory form holds', (t) => {
  for (const dir of ['/usr/include', `${REL_MARK}inc/sys`, '/', `${REL_MARK}.`]) {
    const item = absentItem(dir, ['stdio.h', 'x-y.h']);
    t.deepEqual(absentParts(item), [dir, ['stdio.h', 'x-y.h']]);
  }
});

test('manifests and results: what is written reads back; malformed ones read as absent', (t) => {
  const m: Manifest = {
    v: 3,
    entries: [
      {
        files: ['src/a.c', 'h1', '/usr/include/stdio.h', 'h2'],
        absent: [absentItem('/x', ['stdio.h'])],
        anchor: null,
        date: null,
        stamps: [],
        result: 'r',
        time: 1,
      },
    ],
  };
  t.deepEqual(decodeManifest(encodeEntry(m)), m);
  t.is(decodeManifest(encodeEntry({ ...m, v: 2 } as unknown as Manifest)), undefined, 'an older layout');
  const odd = { ...m, entries: [{ ...m.entries[0], files: ['a', 'h', 'b'] }] };
  t.is(decodeManifest(encodeEntry(odd)), undefined, 'a file without its hash');
  const bad = { ...m, entries: [{ ...m.entries[0], absent: ['/x'] }] };
  t.is(decodeManifest(encodeEntry(bad)), undefined, 'an absent item without names');

  const r = {
    v: 2 as const,
    outputs: [{ role: 'obj' as const, digest: 'd', size: 1 }],
    out: Buffer.from('warn'),
    err: Buffer.alloc(0),
    deps: ['a.c', '/usr/include/stdio.h'],
    sys: '01',
  };
  const back = decodeResult(encodeEntry(r))!;
  t.deepEqual(back.deps, r.deps);
  t.is(back.sys, '01');
  t.is(back.out.toString(), 'warn');
  t.is(back.out.buffer.byteLength, back.out.length, 'its own memory, not a slice of a pool slab');
  t.is(decodeResult(encodeEntry({ ...r, sys: '0' })), undefined, 'one system flag per dependency');
});

test('ownBuffer copies into memory of its own', (t) => {
  const small = Buffer.from('abc'); // from the pool
  t.true(small.buffer.byteLength > small.length);
  const own = ownBuffer(small);
  t.deepEqual(own, small);
  t.is(own.buffer.byteLength, 3);
  t.is(ownBuffer(Buffer.alloc(0)).length, 0);
});

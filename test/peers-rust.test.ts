import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import type { Instance } from './helpers/instance.js';
import { bridgeLab, nsInstance, type Machine, type NsInstance, type RemoteStats } from './helpers/netns.js';
import { keyFor } from './helpers/peers.js';
import { cargo, copyWorkspace, filesUnder } from './helpers/rust.js';
import { waitFor } from './helpers/wait.js';

// A Rust workspace through a LAN peer: two machines on one Ethernet segment (network
// namespaces on a bridge, real mDNS). A builds test/fixtures/rust-ws (itoa and cfg-if from
// Debian, three workspace libraries, a proc-macro, a build script, a binary) with cargo and
// vrift as RUSTC_WRAPPER; B, with an empty store and its checkout in another directory
// (--remap-path-prefix, as a team sharing builds would set), builds it from A's store.

type PStats = RemoteStats & { peers?: Record<string, number | string> };
const CRATES = 7;

async function cargoIn(m: Machine, v: NsInstance, ws: string) {
  const c = cargo(v as unknown as Instance);
  return m.exec('cargo', ['build', '-j2'], { cwd: ws, env: { ...c.env, RUSTFLAGS: `--remap-path-prefix=${ws}=/src` } });
}

// What cargo wrote under target/debug: the libraries' rlib/rmeta, the proc-macro and the binary, by name.
function built(ws: string): Map<string, Buffer> {
  const dir = path.join(ws, 'target', 'debug');
  const files = filesUnder(path.join(dir, 'deps')).filter((f) => /\.(rlib|rmeta|so)$/.test(f));
  return new Map([...files, path.join(dir, 'wsapp')].map((f) => [path.relative(dir, f), fs.readFileSync(f)]));
}

test('mDNS: B (empty store, another directory) builds the Rust workspace from A with 0 rustc compiles and identical rlibs and binary', async (t) => {
  t.timeout(15 * 60_000);
  const [ma, mb] = bridgeLab(t, 2).machines;
  // peer_wait 5 s: on this shared machine an answer may take longer than 50 ms (waiting is not the subject here).
  const env = { VRIFT_PEERS: 'mdns', VRIFT_PEER_WAIT: '5s' };
  const a = nsInstance(t, ma, env);
  const b = nsInstance(t, mb, env);
  a.env.VRIFT_TRUSTED_KEYS = b.env.VRIFT_TRUSTED_KEYS = [keyFor(a.home, 'alice'), keyFor(b.home, 'bob')].join(',');

  const wsA = copyWorkspace(path.join(a.dir, 'a', 'checkout-one'));
  const builtA = await cargoIn(ma, a, wsA);
  t.is(builtA.code, 0, builtA.err);
  const sa = (await a.stats()) as PStats;
  t.is(sa.misses, CRATES, 'A compiled every crate');
  t.is(sa.peers?.mode, 'mdns');

  const wsB = copyWorkspace(path.join(b.dir, 'bb', 'second', 'checkout-two'));
  t.is((await b.vrift(['daemon', 'start'])).code, 0);
  let seen: { state: string; key_name: string }[] = [];
  await waitFor(
    async () => {
      seen = JSON.parse((await b.vrift(['peers', '--json'])).out) as typeof seen;
      return seen.some((x) => x.state === 'up');
    },
    () => `B to find A: ${JSON.stringify(seen)}`,
    { everyMs: 50 },
  );
  t.is(seen[0].key_name, 'alice');

  const builtB = await cargoIn(mb, b, wsB);
  t.is(builtB.code, 0, builtB.err);
  const sb = (await b.stats()) as PStats;
  t.log(JSON.stringify({ hits: sb.hits, misses: sb.misses, uncacheable: sb.uncacheable, peers: sb.peers }));
  t.is(sb.misses, 0, 'no rustc compile on B');
  t.is(sb.hits, CRATES, 'every crate a hit');
  t.true(Number(sb.peers?.hits) >= CRATES, "from A's store");
  const r = await mb.exec(path.join(wsB, 'target', 'debug', 'wsapp'), [], {});
  t.is(r.out.trim(), 'quiet:126 note=unset greeting=hello');
  const fromA = built(wsA);
  const fromB = built(wsB);
  t.true(fromA.size >= 6, `A built ${[...fromA.keys()].join(', ')}`);
  t.deepEqual([...fromB.keys()].sort(), [...fromA.keys()].sort());
  t.deepEqual(
    [...fromA].filter(([rel, buf]) => !fromB.get(rel)?.equals(buf)).map(([rel]) => rel),
    [],
    'rlibs, rmeta, proc-macro and binary byte-identical to A',
  );
});

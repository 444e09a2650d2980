import test from './helpers/test.js';
import { resolveLayers } from '../config/config.js';
import { peersSetting } from '../config/peers.js';
import { instancePaths } from '../ipc/paths.js';

// The peer settings as users write them, through the same layers as every other key.

const layers = (user: Record<string, unknown>, env: Record<string, string> = {}) =>
  resolveLayers({
    paths: instancePaths({ VRIFT_HOME: '/tmp/vrift-peers-config' }),
    env: { HOME: '/root', ...env },
    cwd: '/',
    user: { file: '/tmp/vrift-peers-config/config.toml', table: user },
  });

test('peers, peer_port and peer_wait: defaults, config file, environment', (t) => {
  const d = layers({}).config;
  t.is(d.peers, 'off');
  t.is(d.peer_port, 0);
  t.is(d.peer_wait, 50);
  const f = layers({ peers: 'mdns', peer_port: 7411, peer_wait: '200ms' });
  t.is(f.config.peers, 'mdns');
  t.is(f.config.peer_port, 7411);
  t.is(f.config.peer_wait, 200);
  const e = layers({ peers: 'mdns' }, { VRIFT_PEERS: ' 10.0.0.2:7411, build-box.lan:7000 ,[fd00::1]:80', VRIFT_PEER_PORT: '0', VRIFT_PEER_WAIT: '20ms' });
  t.is(e.config.peers, '10.0.0.2:7411,build-box.lan:7000,[fd00::1]:80');
  t.is(e.sources.peers.where, 'VRIFT_PEERS');
  t.is(e.config.peer_wait, 20);
  t.deepEqual(peersSetting(e.config.peers), {
    mode: 'static',
    peers: [
      { host: '10.0.0.2', port: 7411 },
      { host: 'build-box.lan', port: 7000 },
      { host: 'fd00::1', port: 80 },
    ],
  });
  for (const bad of ['mdsn', 'host', 'host:0', 'host:70000', 'a b:1', ',', 'fd00::1:80']) {
    t.throws(() => layers({ peers: bad }), { message: /invalid peers/ }, bad);
  }
  t.throws(() => layers({ peer_port: 65536 }), { message: /peer_port/ });
  t.throws(() => layers({}, { VRIFT_PEER_PORT: 'any' }), { message: /VRIFT_PEER_PORT/ });
});

import type { ExecutionContext } from 'ava';
import net, { type AddressInfo } from 'node:net';

/**
 * A loopback port on which connections are refused for as long as the test runs: the local
 * end of a connection the test holds open (bound, never listening), so no other process can
 * listen there meanwhile, as it could on a port just closed or one merely believed free.
 */
export async function refusingPort(t: ExecutionContext): Promise<number> {
  const peer = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
  const held = net.connect((peer.address() as AddressInfo).port, '127.0.0.1');
  held.on('error', () => {});
  await new Promise<void>((r, j) => held.once('connect', r).once('error', j));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        held.destroy();
        peer.close(() => r());
      }),
  );
  return held.localPort!;
}

import { type IpcClient, ipcCall } from '../ipc/client.js';
import type { HandlerTable } from '../daemon/context.js';
import test from './helpers/test.js';

// Compile-time checks: `npm run build` fails when one of the @ts-expect-error lines below
// compiles (the protocol map stopped catching that mistake). Nothing here runs a daemon.
const typeChecks = (c: IpcClient, endpoint: string) => {
  void c.request({ t: 'stats', zero: true });
  void c.request({ t: 'compile', cwd: '/', exe: '/usr/bin/gcc', argv: ['gcc'], env: [], wf: true });
  // @ts-expect-error an unknown kind
  void c.request({ t: 'no-such-kind' });
  // @ts-expect-error a field of another kind (done's id on a stats request)
  void c.request({ t: 'stats', id: 'x' });
  // @ts-expect-error a required field missing (compile without exe)
  void c.request({ t: 'compile', cwd: '/', argv: ['gcc'], env: [] });
  // @ts-expect-error a field of the wrong type
  void c.request({ t: 'store-op', op: 'shred' });
  void (async () => {
    const s = await ipcCall(endpoint, { t: 'stats' });
    s.stats satisfies Record<string, unknown>;
    // @ts-expect-error the reply is stats', not hello's
    void s.pid;
  });
  const wrongReply: Partial<HandlerTable> = {
    // @ts-expect-error a handler answering another kind's reply
    stats: async () => ({ t: 'ok' }),
    // @ts-expect-error a pass without a reason
    compile: async () => ({ t: 'pass' }),
  };
  return wrongReply;
};

test('the protocol map types requests, replies and the handler table (checked by tsc)', (t) => {
  t.is(typeof typeChecks, 'function');
});

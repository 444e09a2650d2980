import anyTest, { type ExecutionContext, type TestFn } from 'ava';

// AVA starts every test of a file at once. A file of 30 tests that each start a daemon and
// compile then runs 30 daemons on two cores, and a test's own waits (a daemon's start, a
// store write) measure the crowd instead of vrift. Each test here takes one of SLOTS places
// before its body runs and gives it back after its last teardown (AVA runs teardowns in
// reverse order, and this one is registered first), so a test sees at most SLOTS - 1
// neighbours from its own file. VRIFT_TEST_SLOTS sets it (default 4).
const SLOTS = Math.max(1, Number(process.env.VRIFT_TEST_SLOTS) || 4);
let free = SLOTS;
const waiting: Array<() => void> = [];

async function acquire(t: ExecutionContext): Promise<void> {
  if (free > 0) free--;
  else await new Promise<void>((resolve) => waiting.push(resolve));
  t.teardown(() => {
    const next = waiting.shift();
    if (next) next();
    else free++;
  });
}

type Impl = (t: ExecutionContext) => unknown;
const wrap =
  (impl: Impl): Impl =>
  async (t) => {
    await acquire(t);
    return impl(t);
  };

const test = ((title: string, impl: Impl) => anyTest(title, wrap(impl))) as unknown as TestFn;
Object.assign(test, anyTest, {
  serial: (title: string, impl: Impl) => anyTest.serial(title, wrap(impl)),
});

export default test;

import v8 from 'node:v8';

// Imported first by run.ts, before any of the daemon's functions exist.
//
// V8 optimizes a function after it has run for `interrupt-budget` bytes of bytecode
// (67 584 by default in Node 20). The daemon is short of CPU exactly when it matters (a cold
// -j build has every core compiling), and with the default its optimizing compiler threads
// spent ~0.5-0.7 s of CPU on a fresh daemon's first cold libuv build (collectInputs alone
// was compiled 5 times). Four times the budget: only the hot functions get optimized; daemon
// CPU for that build went down with it (bench/RESULTS.md), hits unchanged once warm. A flag
// this V8 does not know is ignored.
v8.setFlagsFromString('--interrupt-budget=270000');

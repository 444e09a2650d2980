// Protocol number: bump when a message's shape changes. The native shim carries the
// same number (native/proto.h); a daemon that answers another number is replaced.
export const PROTOCOL_VERSION = 2;

// Build identity: shims and daemons of different builds never talk to each other,
// because the key derivation may differ between builds.
export const BUILD_ID = '0.1.0';

#ifndef VRIFT_PROTO_H
#define VRIFT_PROTO_H

/* Must equal PROTOCOL_VERSION and BUILD_ID in ipc/version.ts: the Makefile refuses
 * to build when they drift, because a mismatched shim makes every call an EVERSION. */
#define VRIFT_PROTOCOL_VERSION 2
#define VRIFT_BUILD_ID "0.1.0"

#endif

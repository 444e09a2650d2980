// hello: the version handshake. Any request carries v and build; hello only asks for them.
// A client of any version may ask who is there: nothing in it is required.
export interface HelloRequest {
  t: 'hello';
  v: number;
  build: string;
}
export interface HelloReply {
  t: 'hello';
  v: number;
  build: string;
  pid: number;
  home: string;
  uptimeMs: number;
}

export function parseHello(m: Record<string, unknown>): HelloRequest {
  return { t: 'hello', v: typeof m.v === 'number' ? m.v : 0, build: typeof m.build === 'string' ? m.build : '' };
}

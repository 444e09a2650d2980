// JSON that users read (`vrift stats --json`, `vrift serve`'s /status) has snake_case keys
// throughout; internal objects keep the code's camelCase. One level: maps of reasons keep
// their keys as they are.
export function snakeKeys<T extends object>(o: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase(), v]));
}

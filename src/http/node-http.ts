// node:http's functions and classes, taken with process.getBuiltinModule rather than imported: an
// ES module import of node:http builds its module facade, which reads every export, http.WebSocket
// among them, and that getter loads Node's own bundled undici: ~80 ms of CPU at the start of a
// command that has no other use for it (`bouncer audit`, `audit verify`, `keys`, `sessions`:
// Node 24.21). The gateway itself loads it anyway (the undici package does). Types still
// come from `import type { … } from 'node:http'`, which is erased. test/unit/node-http-import.test.ts
// keeps src/ to this one way in.
export const nodeHttp = process.getBuiltinModule('node:http')

// The HTTP upstream as a route's backend: a plain request is dispatched through the upstream's
// pool, a WebSocket handshake goes through node:http (upgrade.ts).
import type { Backend } from '../request/index.ts'
import { forward, refusalNow } from './dispatch.ts'
import type { ForwardSettings } from './request.ts'
import { forwardUpgrade } from './upgrade.ts'

export function upstreamBackend(settings: ForwardSettings): Backend {
  return {
    upstream: settings.upstream.name,
    writesAnswerHeaders: true,
    serve: (ctx, exchange) => (ctx.upgrade ? forwardUpgrade(ctx, settings, exchange) : forward(ctx, settings, exchange)),
    refusalNow: () => refusalNow(settings.upstream),
  }
}

// The console's built files (console/ at the repository root, built by Vite into console/build/,
// committed: test/integration/console-build.test.ts fails when they are not the build of the
// sources). Read once, gzipped once, served from memory by the admin listener at `/`.
//
// The page and its files need no credential: they hold no data. Everything they show comes from
// /api/* with the admin token (or, later, a sign-in), sent as a bearer header, never a cookie, so
// no other site can make a browser act on the API (CSRF). The Content-Security-Policy allows only
// the console's own scripts, styles and API: no inline script, no other origin, no framing.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

/** From src/admin/ or dist/admin/: the package root holds console/build/. */
export const CONSOLE_BUILD_DIR = fileURLToPath(new URL('../../console/build/', import.meta.url))

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
}

interface Asset {
  type: string
  body: Buffer
  gzip: Buffer | null
  /** Vite names these by their content hash: cache them for good. */
  immutable: boolean
}

export interface ConsoleAssets {
  /** Serves the file for `path`; false when there is none (the caller answers 404). */
  serve(path: string, req: IncomingMessage, res: ServerResponse): boolean
  /** Whether `path` is one of the console's (its page, built or not, and its files). */
  has(path: string): boolean
  readonly built: boolean
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })
}

export function loadConsoleAssets(dir = CONSOLE_BUILD_DIR): ConsoleAssets {
  const assets = new Map<string, Asset>()
  if (existsSync(join(dir, 'index.html'))) {
    for (const file of filesUnder(dir)) {
      const url = `/${relative(dir, file).split(sep).join('/')}`
      const type = TYPES[extname(file)]
      if (!type) continue
      const body = readFileSync(file)
      const gzip = type.startsWith('image/png') ? null : gzipSync(body, { level: 9 })
      assets.set(url, { type, body, gzip, immutable: url.startsWith('/assets/') })
    }
    assets.set('/', assets.get('/index.html') as Asset)
  }
  return {
    built: assets.size > 0,
    has: (path) => path === '/' || assets.has(path),
    serve(path, req, res) {
      const asset = assets.get(path)
      if (!asset) {
        if (path !== '/' || assets.size > 0) return false
        // A checkout whose console was never built: say how, rather than a bare 404.
        const text = 'The console is not built: run `npm run console:build` (it writes console/build/).\n'
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) })
        res.end(req.method === 'HEAD' ? undefined : text)
        return true
      }
      const gzip = asset.gzip !== null && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))
      const body = gzip ? (asset.gzip as Buffer) : asset.body
      res.writeHead(200, {
        'content-type': asset.type,
        'content-length': body.length,
        ...(gzip ? { 'content-encoding': 'gzip' } : {}),
        vary: 'accept-encoding',
        'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
        'content-security-policy': CONSOLE_CSP,
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
        'cross-origin-opener-policy': 'same-origin',
      })
      res.end(req.method === 'HEAD' ? undefined : body)
      return true
    },
  }
}

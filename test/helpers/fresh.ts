// A request on a connection of its own: with server.workers the kernel hands each new connection to
// either worker, so a test sends several of these to reach both.
import { get } from 'node:http'

export function freshRequest(url: string): Promise<{ status: number; requestId: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, requestId: String(res.headers['x-request-id']) }))
    }).on('error', reject)
  })
}

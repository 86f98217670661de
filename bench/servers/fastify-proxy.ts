// Case (e): the TypeScript ecosystem's usual answer, fastify 5 + @fastify/reply-from as a bare
// proxy (no checks at all), on its defaults plus a keep-alive pool as large as Bouncer's.
//   node fastify-proxy.ts UPSTREAM_PORT
import replyFrom from '@fastify/reply-from'
import Fastify from 'fastify'

const app = Fastify({ logger: false })
await app.register(replyFrom, { base: `http://127.0.0.1:${process.argv[2]}`, undici: { connections: 64, pipelining: 1 } })
app.all('/*', (request, reply) => reply.from(request.url))
const address = await app.listen({ port: 0, host: '127.0.0.1' })
console.log(`gateway listening on ${address}`)
process.on('SIGTERM', () => process.exit(0)) // lets --cpu-prof write its profile

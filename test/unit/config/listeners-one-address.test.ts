// Found by an operations probe: server.listen and admin.listen on one address passed `bouncer
// check` ("ok"), and `bouncer serve` then failed with "cannot listen: listen EADDRINUSE: address
// already in use 127.0.0.1:8080", which sends an operator looking for another process.
import { expect, it } from 'vitest'
import { loadConfigText } from '../../../src/config/index.ts'

const ROUTES = 'audit: { sinks: [] }\nupstreams: [{ name: a, url: "http://127.0.0.1:9" }]\nroutes: [{ id: r, path: /x, upstream: a, public: true }]\n'
const errors = (server: string, admin: string) =>
  loadConfigText(`server: { listen: "${server}" }\nadmin: { listen: "${admin}" }\n${ROUTES}`, 'bouncer.yaml', {}).diagnostics
    .filter((d) => d.severity === 'error')
    .map((d) => `${d.line}:${d.col}: ${d.message}`)

it('refuses the admin listener on the gateway listener\'s address, naming both', () => {
  expect(errors('127.0.0.1:8080', '127.0.0.1:8080')).toEqual(['2:18: the gateway listens on 127.0.0.1:8080 (server.listen): the admin listener needs a port of its own'])
  // A wildcard address takes the port on every interface.
  expect(errors('0.0.0.0:8080', '127.0.0.1:8080')).toHaveLength(1)
  expect(errors('[::1]:8080', '[::]:8080')).toHaveLength(1)
})

it('takes listeners on other ports, other addresses, or both on port 0', () => {
  expect(errors('127.0.0.1:8080', '127.0.0.1:9090')).toEqual([])
  expect(errors('127.0.0.1:8080', '127.0.0.2:8080')).toEqual([])
  expect(errors('127.0.0.1:0', '127.0.0.1:0')).toEqual([])
  // Found by review: 0.0.0.0 binds IPv4 only, so an IPv6 address beside it on the port binds too.
  expect(errors('0.0.0.0:8080', '[::1]:8080')).toEqual([])
  expect(errors('[::]:8080', '127.0.0.1:8080')).toHaveLength(1) // :: is dual-stack
})

export { nothingServed, type Backend, type Exchange, type Served } from './backend.ts'
export { clientAddressOf, type ClientAddress } from './client-address.ts'
export { createContext, type Decision, type RequestContext, type RequestFacts, type RouteRef } from './context.ts'
export { claimValue, type Actor, type CredentialKind, type Identity } from './identity.ts'

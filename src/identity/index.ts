export { createIssuerRegistry, type IssuerKeys, type IssuerRegistry, type KeySetEvents } from './issuers.ts'
export { createTokenVerifier, type TokenVerifier } from './verify.ts'
export { findDrift, describeDrift } from './drift.ts'

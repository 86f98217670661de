export { createIssuerRegistry, type IssuerKeys, type IssuerRegistry, type KeyLoading, type KeySetEvents } from './issuers.ts'
export { checkClaims, createTokenVerifier, identityFromClaims, type TokenVerifier } from './verify.ts'
export { findDrift, describeDrift } from './drift.ts'
export {
  bearerVerifier, createAuthenticator, rawHeader,
  type Authenticated, type Authenticator, type CredentialInput, type CredentialVerifier,
} from './authenticate.ts'
export { clientCertVerifier, subjectAltNames, type X509Issuer } from './x509.ts'

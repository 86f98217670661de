export { createIssuerRegistry, keyWithdrawals, type IssuerKeys, type IssuerRegistry, type KeyLoading, type KeySetEvents } from './issuers.ts'
export { boundCertificate, checkClaims, checkIntrospectedClaims, checkWithoutKey, createTokenVerifier, hasAccessTokenParameter, identityFromClaims, issuerUnknown, keyFreeRule, NAMES_NO_ACTOR, type PresentedCertificate, type TokenVerifier } from './verify.ts'
export { actorNameProblem } from './principal-name.ts'
export { findDrift, describeDrift } from './drift.ts'
export {
  bearerVerifier, createAuthenticator, CredentialRefused, rawHeader, unprovenCredential, UnprovenRefusal,
  type Authenticated, type Authenticator, type CredentialInput, type CredentialVerifier,
} from './authenticate.ts'
export { createIntrospector, createIntrospectorRegistry, type Introspector, type IntrospectorRegistry } from './introspection.ts'
export { apiKeyVerifier } from './api-keys/verifier.ts'
export { apiKeyRevocations, createApiKeyDirectoryRegistry, openApiKeyStore, type ApiKeyDirectory, type ApiKeyDirectoryRegistry } from './api-keys/directory.ts'
export { apiKeyId, newApiKey, parseApiKey, PRINCIPAL_NAME } from './api-keys/key.ts'
export { ApiKeyStoreError, keyDocument, statusOf, type ApiKeyDocument, type ApiKeyRecord, type ApiKeyStatus, type ApiKeyStore } from './api-keys/store.ts'
export { clientCertVerifier, presentedCertificate, subjectAltNames, type ForwardedClientCert, type X509Issuer } from './x509.ts'
export { carriesUserClaims, delegatedIdentity, exchangedIdentity, IDP_CLAIMS, splitUserClaims, untrustedProviderRefusal, type OwnTokens } from './own-tokens.ts'
export { decodeCompactJwt, MAX_JSON_DEPTH, nestsTooDeep, valueNestsTooDeep, type DecodedJwt } from './jws.ts'
export { createSignIn, sessionId, type BrowserAnswer, type SignIn } from './sessions/sign-in.ts'
export { createSessionStoreRegistry, openSessionStore, type SessionStoreRegistry } from './sessions/registry.ts'
export { SESSION_ID, SessionStoreError, sessionDocument, type SessionAudience, type SessionDocument, type SessionRecord, type SessionStore } from './sessions/store.ts'

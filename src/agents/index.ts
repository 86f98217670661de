export { tokenExchangeEndpoints, type ExchangeEndpoint } from './exchange/endpoints.ts'
export { ownIssuerConfig } from './exchange/issuer.ts'
export { createExchangeKeys, EXCHANGE_KEY, ExchangeKeyError, isExchangeKey, newExchangeKey, type ExchangeKeys, type PublishedKeySet } from './exchange/keys.ts'

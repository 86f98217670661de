export { ERROR_CODES, isOAuthCode, type ErrorCode, type RecordCode } from './codes.ts'
export { asGatewayError, GatewayError, type GatewayErrorOptions } from './gateway-error.ts'
export { cutShort, oauthErrorText, parserRefusal, problemBody, sendProblem, sendRawProblem } from './respond.ts'
export { CLIENT_REQUEST_BOUNDS, MAX_ECHOED_CHARS, truncateClientValue } from './truncate.ts'

export { ERROR_CODES, isErrorCode, type ErrorCode } from './codes.ts'
export { GatewayError, gatewayError, asGatewayError, type GatewayErrorOptions } from './gateway-error.ts'
export { problemBody, sendProblem, sendRawProblem } from './respond.ts'
export { MAX_ECHOED_CHARS, truncateClientValue } from './truncate.ts'

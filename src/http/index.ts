export { hostAllowList, parseHostPattern, type HostAllowList, type HostPattern, type HostPatternResult } from './hosts.ts'
export { foldHeaderName, HOP_BY_HOP, isManagedVariant, isReservedForConfig, MANAGED_REQUEST_HEADERS } from './managed-headers.ts'
export { acceptRequestId, inspectHeaders, type RequestHeaders } from './request-headers.ts'
export { canonicalSegment, parseTarget, type RequestTarget } from './request-target.ts'

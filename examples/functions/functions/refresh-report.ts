// A Lambda handler for an HTTP API (payload format 2.0), as it would be deployed to AWS: it runs
// behind Bouncer unchanged. POST /reports/{id}/refresh queues a refresh for the caller's tenant;
// GET /reports/status answers how the function is configured.

interface HttpApiEvent {
  routeKey: string
  pathParameters?: Record<string, string>
  body?: string
  isBase64Encoded: boolean
  requestContext: {
    requestId: string
    authorizer?: {
      jwt: { claims: Record<string, string>; scopes: string[] | null }
      bouncer?: { roles: string[] }
    }
  }
}

interface LambdaContext {
  awsRequestId: string
  functionName: string
  getRemainingTimeInMillis(): number
}

const json = (statusCode: number, body: unknown) => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
})

export async function handler(event: HttpApiEvent, context: LambdaContext) {
  if (event.routeKey === 'GET /reports/status') {
    // A value without a statusCode: API Gateway (and Bouncer) answer 200 with it as JSON.
    return { function: context.functionName, region: process.env.REPORTS_REGION ?? 'unset' }
  }
  const claims = event.requestContext.authorizer?.jwt.claims ?? {}
  const raw = event.body === undefined ? '{}' : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body
  let options: { format?: string }
  try {
    options = JSON.parse(raw) as { format?: string }
  } catch {
    return json(400, { error: 'the body must be JSON' })
  }
  console.log(`refresh of report ${event.pathParameters?.id} for tenant ${claims.tenant ?? 'none'}`) // in the gateway's log, with the request id
  return json(202, {
    report: event.pathParameters?.id,
    tenant: claims.tenant ?? null,
    requested_by: claims.sub,
    roles: event.requestContext.authorizer?.bouncer?.roles ?? [],
    format: options.format ?? 'csv',
    status: 'queued',
    request_id: context.awsRequestId,
  })
}

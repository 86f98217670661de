// The handler both function cases run: it echoes what was asked (method, path, query) and a fixed
// 1 KB of data, as the upstream's 1 KB JSON answers in the other cases.
const DATA = 'x'.repeat(1000)

interface EchoEvent {
  rawPath: string
  rawQueryString: string
  requestContext: { http: { method: string } }
}

export async function handler(event: EchoEvent) {
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ method: event.requestContext.http.method, path: event.rawPath, query: event.rawQueryString, data: DATA }),
  }
}

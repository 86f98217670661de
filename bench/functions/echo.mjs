// The handler both function cases run: it echoes what was asked (method, path, query) and a fixed
// 1 KB of data, as the upstream's 1 KB JSON answers in the other cases. JavaScript: the benchmark
// runs the compiled build with type stripping off (as deployed), where a .ts module is refused.
const DATA = 'x'.repeat(1000)

/** @param {{ rawPath: string, rawQueryString: string, requestContext: { http: { method: string } } }} event */
export async function handler(event) {
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ method: event.requestContext.http.method, path: event.rawPath, query: event.rawQueryString, data: DATA }),
  }
}

// Types of echo.mjs, for the plain node:http server that runs the same handler (servers/function-plain.ts).
export interface EchoEvent {
  rawPath: string
  rawQueryString: string
  requestContext: { http: { method: string } }
}
export declare function handler(event: EchoEvent): Promise<{ statusCode: number; headers: Record<string, string>; body: string }>

// The young generation of a request-path worker thread (server.workers), the same as the primary's.
//
// Deployments size the request thread's young generation with NODE_OPTIONS=--max-semi-space-size=16
// (deploy/, the Dockerfile). V8 applies that flag to every isolate, over the resourceLimits each
// worker is started with: the audit worker's 8 MB and a function's slice of its `memory` were
// ignored, and the audit worker committed 16-32 MB of young generation for batches that leave ~1 MB
// alive (issue 15). bin/bouncer.js therefore clears the flag once the main isolate has its heap;
// every worker then gets what its resourceLimits say, and a request-path worker is given this:
// three semi-spaces' worth (V8's young generation is a semi-space pair plus its large-object room).

const FLAG = /^--max[-_]semi[-_]space[-_]size(?:=(\d+))?$/

/** The semi-space size in MB the process was started with (its command line, then NODE_OPTIONS), if any. */
export function startSemiSpaceMb(execArgv: readonly string[], nodeOptions = ''): number | undefined {
  let found: number | undefined
  // NODE_OPTIONS may quote a value ("--max-semi-space-size=16"): the quotes are not the flag's.
  const fromEnv = nodeOptions.split(/\s+/).filter(Boolean).map((arg) => arg.replace(/^["']|["']$/g, ''))
  for (const args of [fromEnv, execArgv]) {
    for (let i = 0; i < args.length; i++) {
      const match = FLAG.exec(args[i] as string)
      if (!match) continue
      const value = Number(match[1] ?? args[i + 1])
      if (Number.isInteger(value) && value > 0) found = value // the command line, read last, wins
    }
  }
  return found
}

/** resourceLimits for a request-path worker: the primary's young generation, or V8's default when none was set. */
export function requestWorkerLimits(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS): { maxYoungGenerationSizeMb: number } | undefined {
  const semiSpace = startSemiSpaceMb(execArgv, nodeOptions)
  return semiSpace === undefined ? undefined : { maxYoungGenerationSizeMb: semiSpace * 3 }
}

#!/usr/bin/env node
// Runs the TypeScript sources directly (Node's type stripping) in a checkout, and the
// packaged build when installed: Node does not strip types inside node_modules.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'

// V8 pretenures allocation sites whose objects survived during startup (config loading); under
// load those sites then allocate per-request objects straight into the old generation, where
// they die young but hold young objects alive: scavenges of 5-15 ms and a heap three times the
// size. Without it the GC pauses stay under 3 ms (bench/README.md, "Profiling").
setFlagsFromString('--no-allocation-site-pretenuring')

const installed = fileURLToPath(import.meta.url).includes('/node_modules/')
const built = new URL('../dist/cli/main.js', import.meta.url)
const useBuild = installed && existsSync(built)
if (!useBuild && !process.features.typescript) {
  console.error(
    `bouncer: Node.js ${process.version} cannot run TypeScript sources. Use Node.js 22.18 or later, ` +
      'or run it through npm (npm start, npx bouncer …), which uses the Node 24 this project pins.',
  )
  process.exit(1)
}
const entry = useBuild ? built : new URL('../src/cli/main.ts', import.meta.url)
const { main } = await import(entry.href)
await main(process.argv)

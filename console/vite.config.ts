// The console's build: `npm run console:build` writes console/build/, which the admin listener
// serves (src/admin/console-assets.ts) and which is committed; test/integration/console-build.test.ts
// builds again and fails when the committed files are not what the sources build to.
import { fileURLToPath } from 'node:url'
import preact from '@preact/preset-vite'
import { defineConfig } from 'vite'

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  plugins: [preact({ devToolsEnabled: false, prefreshEnabled: false })],
  build: {
    outDir: 'build',
    emptyOutDir: true,
    target: 'es2022',
    // No inline script anywhere (the CSP has no 'unsafe-inline'): no preload polyfill, no inlined assets.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
})

import js from '@eslint/js'
import tseslint from 'typescript-eslint'

// The layers of src/, from the bottom (README "Architecture"): a folder imports only from folders of
// the layers below its own, and only through their index.ts. Folders of one layer do not import each
// other. A lower layer that must call up is handed a function at compile time instead. Folders not
// written yet have their place already. test/ and bench/ may import any file: a unit test exercises
// one file's internals and a benchmark measures one function alone.
const LAYERS = [
  ['errors', 'text', 'collections'],
  ['http'],
  ['config'],
  ['telemetry'],
  ['request'],
  ['identity', 'access', 'limits', 'secrets', 'audit'],
  ['upstream', 'datasets', 'functions'],
  ['agents'],
  ['gateway'],
  ['admin'],
  ['instance'],
  ['demo'],
  ['cli'],
]

function layering() {
  const all = LAYERS.flat()
  return LAYERS.flatMap((layer, index) => {
    const below = LAYERS.slice(0, index).flat()
    return layer.flatMap((folder) => {
      const notBelow = all.filter((other) => other !== folder && !below.includes(other))
      const patterns = [{
        regex: `^(\\.\\./)+(${notBelow.join('|')})(/|$)`,
        message: `${folder}/ imports only from the layers below it (README "Architecture"); to call up, take a function handed down at compile time.`,
      }]
      if (below.length > 0) {
        patterns.push({
          regex: `^(\\.\\./)+(${below.join('|')})/(?!index\\.ts$)`,
          message: 'Import another folder only through its index.ts, its one public face.',
        })
      }
      // A shapes file describes answers the console's build reads too (console/tsconfig.json: no
      // node types): it imports only types, from files that import nothing themselves, which it
      // names directly (an index.ts imports the rest of its folder).
      const shapes = [patterns[0], {
        regex: `^(?!(\\./|(\\.\\./)+)([a-z-]+/)*[a-z-]+-shapes\\.ts$|(\\.\\./)+(audit/fields|errors/codes)\\.ts$)`,
        message: 'A *-shapes.ts file imports only types, and only from other *-shapes.ts files, audit/fields.ts and errors/codes.ts (files with no runtime imports): the console\'s build reads it.',
      }]
      return [
        { files: [`src/${folder}/**/*.ts`], rules: { 'no-restricted-imports': ['error', { patterns }] } },
        { files: [`src/${folder}/**/*-shapes.ts`], rules: { 'no-restricted-imports': ['error', { patterns: shapes }] } },
      ]
    })
  })
}

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'data/', 'bench/results/', 'src/admin/console/vendor/', 'console/build/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', Buffer: 'readonly', AbortController: 'readonly', fetch: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', structuredClone: 'readonly', performance: 'readonly', queueMicrotask: 'readonly', crypto: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'Named exports only.' }],
    },
  },
  ...layering(),
  // Tool config files are the one place a default export is the tool's contract.
  { files: ['eslint.config.js', 'vitest.config.ts', 'console/vite.config.ts', 'test/cluster/vitest.config.ts'], rules: { 'no-restricted-syntax': 'off' } },
)

// neostandard, the style Fastify's own projects use, with TypeScript support. `npm run lint`, run by CI.
import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', 'test-output/**', '.tap/**', 'node_modules/**'] }),
  {
    rules: {
      // `void promise` as a statement marks a promise deliberately not awaited, its errors handled by its own chain
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  {
    // The patron pages' scripts are served as they are to every browser a library's patrons use, without a build
    // step: plain ES5 on purpose (var, function), progressive enhancement only.
    files: ['src/web/assets/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { window: 'readonly', document: 'readonly', navigator: 'readonly', fetch: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', Intl: 'readonly', URLSearchParams: 'readonly', DOMParser: 'readonly' } },
    rules: { 'no-var': 'off' }
  }
]

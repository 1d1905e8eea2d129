// One lint configuration for src, test and bench: typescript-eslint's recommended rules plus the
// type-aware rules that catch forgotten promises, which matter in a daemon that must not crash.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      '.tap/',
      'test/fixtures/',
      'config/grafana/',
      'build/',
      'deploy/container/app/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // tap's t.test() returns a promise that tap itself awaits; not awaiting it is how tap is used.
        { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      // A leading underscore names a value left out on purpose (`{ seq: _seq, ...rest }`).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // The errors copy their cause's message into their own text, which is what an operator reads in a
      // log line or a CLI message; a `cause` property would add nothing there.
      'preserve-caught-error': 'off',
    },
  },
  {
    files: ['{src,test,bench}/**/*.{ts,js,mjs}'],
    rules: {
      // prettier wraps code at 120 columns but leaves long strings and comments alone; this catches those.
      'max-len': ['error', { code: 120, ignoreUrls: true }],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // Tests read JSON bodies whose shape is exactly what they assert with t.match; typing each is noise.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
)

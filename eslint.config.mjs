import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Imports that would point the wrong way between layers (lib/ is the product; the edges sit on it). */
const EDGES = ['**/cli/**', '**/functions/**', '**/cdk/**', '**/cli', '**/functions', '**/cdk'];
const restrict = (patterns, message) => ['error', { patterns: [{ group: patterns, message }] }];

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'cdk.out/',
      'coverage/',
      'bench/results/',
      '**/*.js',
      '!bin/*.js',
      '!jest.config.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  // Type-aware checks on the product and its edges: a promise nobody awaits loses its error, a
  // promise passed where a callback returns void is never awaited, a switch must cover its union.
  {
    files: ['lib/**/*.ts', 'cli/**/*.ts', 'functions/**/*.ts', 'cdk/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
    },
  },
  // Layers: lib/ never imports an edge; signing and verification never import each other.
  {
    files: ['lib/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict(
        EDGES,
        'lib/ is the product: it never imports an edge (cli, functions, cdk).',
      ),
    },
  },
  {
    files: ['lib/signing/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict(
        [...EDGES, '**/verification/**', '**/verification'],
        'signing never imports verification (shared formats live in lib/cosign); lib/ never imports an edge.',
      ),
    },
  },
  {
    files: ['lib/verification/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict(
        [...EDGES, '**/signing/**', '**/signing'],
        'verification never imports signing (shared formats live in lib/cosign); lib/ never imports an edge.',
      ),
    },
  },
  {
    files: ['bin/*.js', 'jest.config.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);

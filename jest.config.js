/** Unit tests never touch the network; integration tests (*.int.test.ts) start real servers. */
const transform = {
  '^.+\\.(t|j|mj)sx?$': [
    '@swc/jest',
    { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } },
  ],
};
// middy and a few other dependencies ship ESM only; jest's module loader needs them as CommonJS.
const transformIgnorePatterns = ['/node_modules/(?!(@middy)/)'];
const common = {
  transform,
  transformIgnorePatterns,
  testEnvironment: 'node',
  setupFiles: ['<rootDir>/test/support/quiet-aws-sdk.ts'],
  setupFilesAfterEnv: ['<rootDir>/test/support/matchers.ts'],
};

/**
 * Coverage is collected when the whole suite runs through `npm test` (npm sets
 * npm_lifecycle_event), or with `--coverage`; a developer's `npx jest test/signing` stays fast and
 * is not held to thresholds meant for the whole suite. Every lib/ file counts, tested or not.
 * Thresholds are per folder (the aggregate of its files), a few points under what the suite
 * reaches, so that losing tests fails the run and a small refactor does not.
 */
const coverage = {
  collectCoverage: process.env.npm_lifecycle_event === 'test',
  collectCoverageFrom: ['lib/**/*.ts'],
  coverageReporters: ['text-summary', 'json-summary'],
  coverageThreshold: {
    './lib/signing/': { lines: 97, statements: 96, branches: 92, functions: 97 },
    './lib/registry/': { lines: 92, statements: 89, branches: 80, functions: 91 },
    './lib/http/': { lines: 91, statements: 90, branches: 89, functions: 97 },
    './lib/journal/': { lines: 93, statements: 92, branches: 82, functions: 96 },
    './lib/verification/': { lines: 94, statements: 93, branches: 87, functions: 95 },
    './lib/config/': { lines: 93, statements: 90, branches: 83, functions: 97 },
  },
};

module.exports = {
  ...coverage,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: ['\\.int\\.test\\.ts$'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/**/*.int.test.ts'],
      testTimeout: 60000,
    },
  ],
};

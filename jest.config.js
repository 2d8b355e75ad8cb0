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
  setupFilesAfterEnv: ['<rootDir>/test/support/matchers.ts'],
};

module.exports = {
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

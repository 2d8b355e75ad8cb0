#!/usr/bin/env node
'use strict';
// The CLI is bundled to dist/ by `npm install` (the `prepare` script); see scripts/build.mjs.
const path = require('node:path');
const fs = require('node:fs');
const bundle = path.join(__dirname, '..', 'dist', 'signet.js');
if (!fs.existsSync(bundle)) {
  process.stderr.write('signet: dist/signet.js is missing; run `npm install` (or `npm run build`) first\n');
  process.exit(2);
}
require(bundle);

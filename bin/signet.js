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
// The AWS SDK warns on Node.js < 22 that its 2027 releases will need Node.js 22; Signet's CLI
// supports Node.js 20.17+, so the warning would only be noise on stderr. This is the SDK's opt-out
// (it must be set before the first client is created); a value the user set is kept.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
require(bundle);

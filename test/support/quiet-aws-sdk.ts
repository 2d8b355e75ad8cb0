/**
 * Jest setup (`setupFiles`): the AWS SDK warns once per process on Node.js < 22 that its releases
 * after January 2027 will require Node.js 22. Signet supports Node.js 20.17+ for the CLI and the
 * local service (the Lambdas run on nodejs22.x), so the warning is noise in every test's output.
 * `AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true` is the SDK's documented opt-out
 * (aws/aws-sdk-js-v3#7983); `bin/signet.js` sets it for the CLI the same way. A value the
 * caller set is kept.
 */
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
export {};

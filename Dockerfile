# syntax=docker/dockerfile:1
# Signet's container image: `signet serve` for Kubernetes (deploy/kubernetes, docs/kubernetes.md).
#
#   docker build -t registry.example.com/platform/signet:0.1.0 .
#
# better-sqlite3, the journal's native addon, is compiled for the Node.js ABI and the C library it
# will run on: both build stages use the runtime's Node.js major (22, also the Lambda runtime's,
# cdk/signet-function.ts) and its Debian release (12, bookworm: the same glibc).
# test/deploy/dockerfile.test.ts checks these facts against the code; Docker was not available
# where this file was written, so the image build itself is untested there.

# The bundle: dist/signet.js (esbuild; dependencies stay in node_modules).
FROM node:22-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: `prepare` would bundle before the sources are here, and bundling needs only
# esbuild, whose binary comes as an optional dependency.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY bin ./bin
COPY cli ./cli
COPY lib ./lib
COPY functions ./functions
RUN npm run build

# The production dependencies, with better-sqlite3 built here (its prebuilt binary, else node-gyp).
FROM node:22-bookworm AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts keeps the root `prepare` (it needs esbuild, a dev dependency) from running;
# `npm rebuild` then runs better-sqlite3's install script alone.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm rebuild better-sqlite3

# The runtime: no shell, no package manager, uid 65532.
FROM gcr.io/distroless/nodejs22-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY package.json ./
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/signet.js"]
CMD ["serve", "--config", "/etc/signet/signet.yaml"]

# syntax=docker/dockerfile:1
#
# vdb-server: one container = one replica (DESIGN §11). Configure it with the VDB_* environment
# variables or the flags of `vdb-server --help` (`docker run --rm veritydb:local --help`).
# docker-compose.yml runs 3- and 5-replica clusters from this image.

# --- build: install everything, compile every package with `tsc -b` ---------------------------
FROM node:20-slim AS build
WORKDIR /src
COPY . .
RUN npm ci && npm run build
# Keep only what runs: the manifests (for `npm ci` below) and each package's compiled dist/,
# without its compiled tests.
RUN mkdir -p /out/sim /out/test \
 && cp package.json package-lock.json /out/ \
 && cp sim/package.json /out/sim/ \
 && cp test/package.json /out/test/ \
 && for dir in packages/*/; do \
      mkdir -p "/out/$dir" && cp "$dir/package.json" "/out/$dir" && cp -R "$dir/dist" "/out/$dir" \
      && rm -rf "/out/$dir/dist/test" && find "/out/$dir" -name '*.tsbuildinfo' -delete; \
    done

# --- runtime: production dependencies and compiled code, run as the unprivileged `node` user ---
FROM node:20-slim
ENV NODE_ENV=production \
    VDB_DATA_DIR=/data \
    VDB_LISTEN=0.0.0.0:7420 \
    VDB_HTTP=0.0.0.0:7421
WORKDIR /app
COPY --from=build /out/ ./
# --ignore-scripts: the root `prepare` script runs tap, a dev dependency.
RUN npm ci --omit=dev --ignore-scripts \
 && npm cache clean --force \
 && mkdir -p /data /keys \
 && chown node:node /data /keys \
 && chmod 0700 /data /keys
USER node
# /data: the replica's data dir. /keys: a cluster's shared admin key (VDB_ADMIN_KEY=/keys/admin.key).
VOLUME ["/data"]
EXPOSE 7420 7421
# Healthy = /ready answers 200 (part of a normal view and caught up), on the port of VDB_HTTP.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.VDB_HTTP||'').split(':').pop()+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/packages/server/dist/src/main.js"]

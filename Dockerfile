# syntax=docker/dockerfile:1
# ankisyncd: the unicase SQLite extension is compiled and the production dependencies are
# installed in build stages; the runtime stage copies them next to the sources and runs as an
# unprivileged user (CONTAINER_USER_ID:CONTAINER_GROUP_ID) so a companion web app running as
# the same user can share the data folder. Data lives in one volume, /data.
#
# The RUN steps are repeated outside Docker by scripts/docker-build-steps.sh (the test suite
# has no Docker engine), which also checks that the commands below are still the ones it runs.
ARG BUN_VERSION=1.4.5

# ---------------------------------------------------------------------------------------------
FROM oven/bun:${BUN_VERSION}-slim AS native
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev libsqlite3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY scripts/build-native.sh scripts/build-native.sh
COPY native native
RUN bash scripts/build-native.sh

# ---------------------------------------------------------------------------------------------
FROM oven/bun:${BUN_VERSION}-slim AS deps
WORKDIR /app
COPY package.json bun.lock ./
RUN bun install --production --frozen-lockfile --ignore-scripts
# Elysia in one module (less memory than its ~160) and Drizzle in three (~125):
# scripts/bundle-deps.ts, from the faces of Drizzle the server imports.
COPY scripts/bundle-deps.ts scripts/bundle-deps.ts
COPY src/platform/drizzle src/platform/drizzle
RUN bun scripts/bundle-deps.ts

# ---------------------------------------------------------------------------------------------
FROM oven/bun:${BUN_VERSION}-slim AS runtime
ARG CONTAINER_USER_ID=1001
ARG CONTAINER_GROUP_ID=65533
# The user and group may already exist in the base image (e.g. 1000 is `bun`): reuse them.
RUN (getent group "${CONTAINER_GROUP_ID}" >/dev/null || groupadd --gid "${CONTAINER_GROUP_ID}" ankisyncd) \
 && (getent passwd "${CONTAINER_USER_ID}" >/dev/null \
     || useradd --uid "${CONTAINER_USER_ID}" --gid "${CONTAINER_GROUP_ID}" --no-create-home \
          --home-dir /nonexistent --shell /usr/sbin/nologin ankisyncd) \
 && install -d -o "${CONTAINER_USER_ID}" -g "${CONTAINER_GROUP_ID}" -m 2770 /data
WORKDIR /app
ENV NODE_ENV=production \
    SYNC_BASE=/data \
    SYNC_HOST=0.0.0.0 \
    SYNC_PORT=8080 \
    CONTAINER_USER_ID=${CONTAINER_USER_ID} \
    CONTAINER_GROUP_ID=${CONTAINER_GROUP_ID} \
    BUN_RUNTIME_TRANSPILER_CACHE_PATH=0
# Everything under /app belongs to root and is read-only for the server: it writes only /data.
COPY --from=deps /app/node_modules node_modules
COPY --from=deps /app/build/deps build/deps
COPY --from=native /app/build/unicase.so build/unicase.so
COPY package.json bun.lock tsconfig.json ./
COPY migrations migrations
COPY scripts/healthcheck.ts scripts/healthcheck.ts
COPY src src
USER ${CONTAINER_USER_ID}:${CONTAINER_GROUP_ID}
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["bun", "scripts/healthcheck.ts"]
# SIGTERM closes open collections cleanly (src/main.ts).
STOPSIGNAL SIGTERM
CMD ["bun", "src/main.ts"]

# syntax=docker/dockerfile:1
# Production image: MySQL + Kafka come from the environment (DATABASE_URL, KAFKA_BROKERS; see README).
# Build stage: install everything, compile src/ to dist/ with tsc, then drop the dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 (the embedded default) needs a toolchain when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: what was built and the production dependencies, run as the unprivileged `node` user.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 9082
# Prometheus metrics, /livez and /readyz (METRICS_ADDR); the health check asks /livez (no curl in the image).
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9464/livez').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node is PID 1 and handles SIGTERM itself (staged shutdown within SHUTDOWN_GRACE_MS; a second signal forces).
STOPSIGNAL SIGTERM
# The heap cap keeps RSS under 200 MB (README "Memory"; the live heap stays near 30-40 MB under load).
CMD ["node", "--enable-source-maps", "--max-old-space-size=128", "dist/main.js"]

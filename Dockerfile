# syntax=docker/dockerfile:1
# Production image: MySQL + Kafka come from the environment (DATABASE_URL, KAFKA_BROKERS).
FROM node:20-bookworm-slim AS deps
WORKDIR /app
# better-sqlite3 (the embedded default) needs a toolchain when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
USER node
EXPOSE 9082
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "src/main.ts"]

/**
 * This service's API with chosen `ApiServerOptions` (connection limits, timeouts) over the app's real
 * handlers and database (SQLite + in-process bus): the app is started as usual, and a second API server is
 * built from the same parts, so options that are not (yet) config keys can be tested.
 */

import { type ApiServerOptions, createApiServer } from "../../src/api/api-server.ts";
import type { App } from "../../src/app.ts";
import { migrateToLatest } from "../../src/db/migrations.ts";
import { createLogger, type Logger } from "../../src/lib/logger.ts";
import { createTestEnv, startApp } from "./harness.ts";

export interface ApiUnderTest {
  readonly app: App;
  readonly port: number;
  readonly api: ReturnType<typeof createApiServer>;
  close(graceMs?: number): Promise<void>;
}

export async function startApiUnderTest(
  options: Partial<ApiServerOptions> = {},
  extra: {
    env?: Record<string, string>;
    logger?: Logger;
    /** false: the database is migrated but the relay, consumer and delivery loops never run (a still DB). */
    loops?: boolean;
  } = {},
): Promise<ApiUnderTest> {
  const testEnv = await createTestEnv("sqlite+memory", extra.env ?? {});
  const app = await startApp(testEnv, { start: extra.loops !== false });
  if (extra.loops === false) await migrateToLatest(app.db.kysely, app.db.traits, { outbox: app.route.table });
  const api = createApiServer({
    options: {
      host: "127.0.0.1",
      port: 0,
      rpcTimeoutMs: 6_000,
      maxMessageBytes: 4 * 1024 * 1024,
      ...options,
    },
    bindings: app.apiBindings,
    health: app.health,
    logger: extra.logger ?? createLogger(process.env.TEST_LOG_LEVEL === "debug" ? "debug" : "silent"),
  });
  const port = await api.listen();
  return {
    app,
    port,
    api,
    async close(graceMs = 1_000) {
      await api.close(graceMs);
      await app.stop();
      await testEnv.dispose();
    },
  };
}

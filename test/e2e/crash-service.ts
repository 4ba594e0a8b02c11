/**
 * The service with one test-only twist, for the crash-loop test: `node --import tsx test/e2e/crash-service.ts`
 * runs src/main.ts's app (same config, same wiring, the real notification handler) except that handling an
 * event whose payload's `trace_id` is `crash:abort` calls `process.abort()` — the process dies in the middle
 * of handling it, as a native crash or the OOM killer would end it. Production has no such switch.
 */
import { createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load-config.ts";
import type { OutboxHandler } from "../../src/outbox/outbox-handler.ts";

const CRASH_TRACE_ID = "crash:abort";

function crashingOn(handler: OutboxHandler): OutboxHandler {
  return {
    ...handler,
    handleEvents(events, signal) {
      if (events.some((event) => event.payload.includes(`"trace_id":"${CRASH_TRACE_ID}"`))) {
        process.stdout.write(
          `${JSON.stringify({ level: "info", time: new Date().toISOString(), msg: "crash-service: aborting", outboxIds: events.map((e) => e.outboxId) })}\n`,
        );
        process.abort();
      }
      return handler.handleEvents(events, signal);
    },
  };
}

const app = createApp(loadConfig(), { handlers: (defaults) => defaults.map(crashingOn) });
process.on("SIGTERM", () => {
  void app.stop().then(() => process.exit(0));
});
await app.start();

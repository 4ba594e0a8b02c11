import { type AppOptions, createApp, SHUTDOWN_CLOSE_MARGIN_MS } from "../app.ts";
import { ConfigError, loadConfig } from "../config/load-config.ts";
import { withTimeout } from "../lib/sleep.ts";
import { resealSecrets } from "./reseal-command.ts";
import { runUntilStopped } from "./supervision.ts";
import { startTracing, tracingPlan } from "./tracing-sdk.ts";

/** The last spans get this long to reach the collector at exit (within the backstop's margin). */
const TRACING_FLUSH_MS = 2_000;

/**
 * The process edge: config → app → start; SIGINT/SIGTERM → the staged stop, within SHUTDOWN_GRACE_MS plus a
 * small margin, then exit 0; a second signal forces exit. A loop that fails for good stops the app the same
 * way and exits 70 (supervision.ts). `main.js reseal-secrets` runs the reseal job instead (reseal-command.ts).
 * Resolves with the exit code; src/main.ts exits with it. `options` are createApp's (a test runs the real edge
 * over a bus of its own).
 */
export async function serve(options: AppOptions = {}): Promise<number> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`smartflow-notification: configuration error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (process.argv[2] === "reseal-secrets") return resealSecrets(config);
  const app = createApp(config, options);
  const tracing = startTracing(tracingPlan(config.tracing), app.logger);
  const { file, keys } = config.goDeployment;
  if (file || Object.keys(keys).length > 0) {
    app.logger.info("read the Go deployment's configuration", { file: file ?? null, keys });
  }
  let signals = 0;
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        app.logger.warn("second signal: exiting without draining", { signal });
        process.exit(1);
      }
      app.logger.info("signal received", { signal });
      // The staged stop is bounded (grace time, then the closes); this is the backstop if it were not.
      const backstopMs = config.shutdownGraceMs + 3 * SHUTDOWN_CLOSE_MARGIN_MS;
      setTimeout(() => {
        app.logger.error("shutdown overran its budget: exiting", { backstopMs });
        process.exit(1);
      }, backstopMs).unref();
      app.stop().then(resolve, resolve);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  const code = await runUntilStopped(app, stopped);
  // The spans of the last calls and notifications are exported before the process exits.
  await withTimeout(tracing.shutdown(), TRACING_FLUSH_MS, "flush the traces").catch(() => undefined);
  return code;
}

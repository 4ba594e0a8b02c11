import { startTracing, tracingPlan } from "./app/tracing-sdk.ts";
import { createApp, SHUTDOWN_CLOSE_MARGIN_MS } from "./app.ts";
import { ConfigError, loadConfig } from "./config/load-config.ts";
import { describeError } from "./lib/errors.ts";

/**
 * The process edge: config → app → start; SIGINT/SIGTERM → the staged stop, within SHUTDOWN_GRACE_MS plus a
 * small margin, then exit; a second signal forces exit.
 */
async function main(): Promise<number> {
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
  const app = createApp(config);
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
      app
        .stop()
        .then(() => tracing.shutdown())
        .catch((error: unknown) => app.logger.warn("stop failed", { error: describeError(error) }))
        .finally(resolve);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  try {
    await app.start();
  } catch (error) {
    app.logger.error("startup failed", { error: describeError(error) });
    await app.stop();
    await tracing.shutdown().catch(() => undefined);
    return 1;
  }
  await stopped;
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`smartflow-notification: fatal: ${describeError(error)}\n`);
    process.exit(1);
  },
);

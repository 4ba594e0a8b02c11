import { resealSecretsCommand } from "./app/reseal-command.ts";
import { createApp, SHUTDOWN_CLOSE_MARGIN_MS } from "./app.ts";
import { ConfigError, loadConfig } from "./config/load-config.ts";
import { AppError, describeError } from "./lib/errors.ts";
import { createLogger } from "./lib/logger.ts";

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
  if (process.argv[2] === "reseal-secrets") return resealSecrets(config);
  const app = createApp(config);
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
  try {
    await app.start();
  } catch (error) {
    app.logger.error("startup failed", { error: describeError(error) });
    await app.stop();
    return 1;
  }
  await stopped;
  return 0;
}

/** `reseal-secrets`: seals the channels' secrets again with SECRETS_KEY; exit 0 once none is left. */
async function resealSecrets(config: ReturnType<typeof loadConfig>): Promise<number> {
  const logger = createLogger(config.logLevel).child({
    service: "smartflow-notification",
    command: "reseal-secrets",
  });
  const abort = new AbortController();
  process.once("SIGINT", () => abort.abort());
  process.once("SIGTERM", () => abort.abort());
  try {
    const result = await resealSecretsCommand(config, logger, abort.signal);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result.remaining === 0 ? 0 : 1;
  } catch (error) {
    // An AppError's message already says what its cause did (the key ids, the row).
    const why = AppError.is(error) ? error.message : describeError(error);
    process.stderr.write(`smartflow-notification: reseal-secrets: ${why}\n`);
    return 1;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`smartflow-notification: fatal: ${describeError(error)}\n`);
    process.exit(1);
  },
);

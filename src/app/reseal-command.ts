import type { Config } from "../config/load-config.ts";
import { createDb } from "../db/database.ts";
import { AppError, describeError } from "../lib/errors.ts";
import { createLogger, type Logger } from "../lib/logger.ts";
import { createSecretBox } from "../lib/secret-box.ts";
import { createChannelReseal } from "../notifications/sql/channel-reseal.ts";

export interface ResealCommandResult {
  readonly resealed: number;
  readonly remaining: number;
}

const BATCH = 200;
const ROWS_PER_ROUND = 5_000;

/**
 * `node dist/main.js reseal-secrets`: the ResealSecrets RPC for operators without a gRPC client. Opens the
 * configured database only (no API, no loops, no bus), reseals round after round until nothing is left, or
 * a round makes no progress (rows rewritten meanwhile by something that does not seal with SECRETS_KEY), or
 * `signal` is aborted; then reports what is left. Safe beside running instances.
 */
export async function resealSecretsCommand(
  config: Config,
  logger: Logger,
  signal: AbortSignal,
): Promise<ResealCommandResult> {
  const db = createDb(config.database.target, config.database.poolSize, config.database.timeZone);
  try {
    const box = createSecretBox(config.secretsKey, config.secrets.previousKey);
    const job = createChannelReseal(db.kysely, db.traits, box);
    let resealed = 0;
    for (;;) {
      const round = await job.reseal({ batchSize: BATCH, limit: ROWS_PER_ROUND }, signal);
      resealed += round.resealed;
      logger.info("reseal round", { ...round, keyId: box.keyId ?? null });
      if (round.remaining === 0 || round.resealed === 0 || signal.aborted) {
        return { resealed, remaining: round.remaining };
      }
    }
  } finally {
    await db.close();
  }
}

/** `reseal-secrets`: seals the channels' secrets again with SECRETS_KEY; exit 0 once none is left. */
export async function resealSecrets(config: Config): Promise<number> {
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

import type { Config } from "../config/load-config.ts";
import { createDb } from "../db/database.ts";
import type { Logger } from "../lib/logger.ts";
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

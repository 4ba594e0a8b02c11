/**
 * Key rotation: rows/s resealed by the reseal job (`src/notifications/sql/channel-reseal.ts`: select the rows
 * not sealed with the current key by primary key, open with the previous key, seal, conditional update per
 * row), against the same rows rewritten in the same batches by a plain `update … where id = ?` with values
 * sealed beforehand (the baseline: the database's cost of the writes alone). Rounds alternate the two.
 *
 *   npx tsx bench/reseal.bench.ts [rows] [rounds]      (MariaDB at MYSQL_URL; no Kafka)
 */
import { randomBytes } from "node:crypto";
import { createDb } from "../src/db/database.ts";
import { migrateToLatest } from "../src/db/migrations.ts";
import { createSecretBox } from "../src/lib/secret-box.ts";
import { createChannelReseal } from "../src/notifications/sql/channel-reseal.ts";
import { createSqlChannelStore } from "../src/notifications/sql/sql-channel-store.ts";
import { median, withDatabase } from "./support.ts";

const rows = Number(process.argv[2] ?? 5_000);
const rounds = Number(process.argv[3] ?? 3);
const BATCH = 200;

await withDatabase(async (url) => {
  const db = createDb({ kind: "mysql", url }, 10);
  try {
    await migrateToLatest(db.kysely, db.traits, { outbox: "notification_outbox_messages" });
    const keys = [randomBytes(32), randomBytes(32)] as const;
    const store = createSqlChannelStore(db.kysely, db.traits, createSecretBox(keys[0]));
    for (let i = 0; i < rows; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, rows - i) }, (_, j) =>
          store.upsert(
            {
              userId: BigInt(1 + i + j),
              enabled: true,
              webhookUrl: `https://www.feishu.cn/flow/api/trigger-webhook/key${i + j}`,
              authType: "bearer",
              bearerToken: `token-${i + j}`,
              webhookKind: "flow_trigger",
              signingSecret: "",
            },
            new Date(),
          ),
        ),
      );
    }
    const ids = (
      await db.kysely.selectFrom("user_notification_channels").select("id").orderBy("id").execute()
    ).map((row) => Number(row.id));
    const job = [],
      plain = [];
    // Each round turns the key over: the rows sealed with keys[k] are resealed with keys[1 - k].
    for (let round = 0; round < rounds * 2; round++) {
      const from = keys[round % 2] as Buffer;
      const to = keys[(round + 1) % 2] as Buffer;
      if (round % 2 === 0) {
        const box = createSecretBox(to, from);
        const started = performance.now();
        const result = await createChannelReseal(db.kysely, db.traits, box).reseal(
          { batchSize: BATCH, limit: rows },
          new AbortController().signal,
        );
        if (result.resealed !== rows || result.remaining !== 0) throw new Error(JSON.stringify(result));
        job.push(rows / ((performance.now() - started) / 1000));
      } else {
        const box = createSecretBox(to);
        const values = ids.map((id) => ({
          id,
          url: box.seal(`https://x/${id}`),
          token: box.seal(`t-${id}`),
        }));
        const started = performance.now();
        for (let i = 0; i < values.length; i += BATCH) {
          await Promise.all(
            values
              .slice(i, i + BATCH)
              .map((v) =>
                db.kysely
                  .updateTable("user_notification_channels")
                  .set({ webhook_url: v.url, bearer_token: v.token })
                  .where("id", "=", v.id)
                  .execute(),
              ),
          );
        }
        plain.push(rows / ((performance.now() - started) / 1000));
      }
    }
    const reseal = Math.round(median(job));
    const baseline = Math.round(median(plain));
    console.log(
      JSON.stringify({
        rows,
        rounds,
        batch: BATCH,
        resealRowsPerS: reseal,
        plainUpdateRowsPerS: baseline,
        ratio: +(reseal / baseline).toFixed(2),
      }),
    );
  } finally {
    await db.close();
  }
});

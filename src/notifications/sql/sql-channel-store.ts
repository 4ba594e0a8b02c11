import type { Kysely } from "kysely";
import type { DbTraits } from "../../db/db-traits.ts";
import { int64Column, toInt64 } from "../../db/int64-column.ts";
import type { Database } from "../../db/schema.ts";
import type { SecretBox } from "../../lib/secret-box.ts";
import { CHANNEL_NAME, type Channel } from "../channel.ts";
import type { UserId } from "../ids.ts";
import type { ChannelStore } from "../ports/channel-store.ts";

type ChannelsDb = Kysely<Database>;

const selectChannels = (db: ChannelsDb) =>
  db
    .selectFrom("user_notification_channels")
    .select([
      int64Column("user_id"),
      "enabled",
      "webhook_url",
      "auth_type",
      "bearer_token",
      "webhook_kind",
      "signing_secret",
      "last_test_status",
      "last_test_error",
      "last_test_at",
    ])
    .where("channel", "=", CHANNEL_NAME);

type ChannelRow = Awaited<ReturnType<ReturnType<typeof selectChannels>["executeTakeFirstOrThrow"]>>;

function toChannel(row: ChannelRow, traits: DbTraits, secrets: SecretBox): Channel {
  return {
    userId: toInt64(row.user_id),
    // A BOOLEAN column reads as 0/1 on both databases.
    enabled: Boolean(Number(row.enabled)),
    webhookUrl: secrets.open(row.webhook_url ?? ""),
    authType: row.auth_type || "none",
    bearerToken: secrets.open(row.bearer_token ?? ""),
    webhookKind: row.webhook_kind === "group_bot" ? "group_bot" : "flow_trigger",
    signingSecret: secrets.open(row.signing_secret ?? ""),
    lastTestStatus: row.last_test_status ?? "",
    lastTestError: row.last_test_error ?? "",
    lastTestAt: traits.readTime(row.last_test_at),
  };
}

/**
 * `user_notification_channels`. The webhook URL (its path is the bot's key), the bearer token and the signing
 * secret are sealed by `secrets` when a key is configured (weakness 15), and opened on read.
 */
export function createSqlChannelStore(db: ChannelsDb, traits: DbTraits, secrets: SecretBox): ChannelStore {
  const t = traits.time;
  return {
    async get(userId) {
      const row = await selectChannels(db).where("user_id", "=", userId).executeTakeFirst();
      return row ? toChannel(row, traits, secrets) : undefined;
    },

    async getMany(userIds) {
      const channels = new Map<UserId, Channel>();
      if (userIds.length === 0) return channels;
      const rows = await selectChannels(db)
        .where("user_id", "in", [...new Set(userIds)])
        .execute();
      for (const row of rows) {
        const channel = toChannel(row, traits, secrets);
        channels.set(channel.userId, channel);
      }
      return channels;
    },

    async upsert(channel, now) {
      const values = {
        enabled: channel.enabled ? 1 : 0,
        webhook_url: secrets.seal(channel.webhookUrl),
        auth_type: channel.authType,
        bearer_token: secrets.seal(channel.bearerToken),
        webhook_kind: channel.webhookKind,
        signing_secret: secrets.seal(channel.signingSecret),
        updated_at: t(now),
      };
      await db
        .insertInto("user_notification_channels")
        .values({ user_id: channel.userId, channel: CHANNEL_NAME, created_at: t(now), ...values })
        .$call((qb) =>
          traits.dialect === "mysql"
            ? qb.onDuplicateKeyUpdate(values)
            : qb.onConflict((oc) => oc.columns(["user_id", "channel"]).doUpdateSet(values)),
        )
        .execute();
    },

    async delete(userId) {
      await db
        .deleteFrom("user_notification_channels")
        .where("user_id", "=", userId)
        .where("channel", "=", CHANNEL_NAME)
        .execute();
    },

    async recordTest(userId, status, error, at) {
      await db
        .updateTable("user_notification_channels")
        .set({ last_test_status: status, last_test_error: error, last_test_at: t(at), updated_at: t(at) })
        .where("user_id", "=", userId)
        .where("channel", "=", CHANNEL_NAME)
        .execute();
    },
  };
}

import type { Kysely } from "kysely";
import type { DbTraits } from "../db/db-traits.ts";
import type { Database } from "../db/schema.ts";
import type { SecretBox } from "../lib/secret-box.ts";
import type { WebhookKind } from "./delivery-channel.ts";

/** The channels table's constant (the records table says "feishu"). */
export const CHANNEL_NAME = "feishu_webhook";

export interface ChannelRow {
  readonly userId: number;
  readonly enabled: boolean;
  readonly webhookUrl: string;
  readonly authType: string;
  readonly bearerToken: string;
  readonly webhookKind: WebhookKind;
  readonly signingSecret: string;
  readonly lastTestStatus: string;
  readonly lastTestError: string;
  readonly lastTestAt: Date | null;
}

export type ChannelUpsert = Omit<ChannelRow, "lastTestStatus" | "lastTestError" | "lastTestAt">;

export type ChannelStore = ReturnType<typeof createChannelStore>;

/**
 * The channels table. The webhook URL (its path is the bot's key), the bearer token and the signing secret are
 * sealed by `secrets` when a key is configured (weakness 15), and opened on read.
 */
export function createChannelStore({
  db,
  traits,
  secrets,
}: {
  readonly db: Kysely<Database>;
  readonly traits: DbTraits;
  readonly secrets: SecretBox;
}) {
  const t = traits.time;
  const select = () =>
    db
      .selectFrom("user_notification_channels")
      .select([
        "user_id",
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
  type Row = Awaited<ReturnType<ReturnType<typeof select>["executeTakeFirstOrThrow"]>>;
  const toChannel = (row: Row): ChannelRow => ({
    userId: Number(row.user_id),
    enabled: Boolean(Number(row.enabled)),
    webhookUrl: secrets.open(row.webhook_url ?? ""),
    authType: row.auth_type || "none",
    bearerToken: secrets.open(row.bearer_token ?? ""),
    webhookKind: row.webhook_kind === "group_bot" ? "group_bot" : "flow_trigger",
    signingSecret: secrets.open(row.signing_secret ?? ""),
    lastTestStatus: row.last_test_status ?? "",
    lastTestError: row.last_test_error ?? "",
    lastTestAt: traits.readTime(row.last_test_at),
  });

  return {
    async get(userId: number): Promise<ChannelRow | undefined> {
      const row = await select().where("user_id", "=", userId).executeTakeFirst();
      return row ? toChannel(row) : undefined;
    },

    async getMany(userIds: readonly number[]): Promise<Map<number, ChannelRow>> {
      const channels = new Map<number, ChannelRow>();
      if (userIds.length === 0) return channels;
      for (const row of await select()
        .where("user_id", "in", [...new Set(userIds)])
        .execute()) {
        channels.set(Number(row.user_id), toChannel(row));
      }
      return channels;
    },

    /** Creates or replaces the user's channel; the last test result is kept (as the original's upsert). */
    async upsert(channel: ChannelUpsert, now: Date): Promise<void> {
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

    /** Hard delete; deleting a missing channel is not an error. */
    async delete(userId: number): Promise<void> {
      await db
        .deleteFrom("user_notification_channels")
        .where("user_id", "=", userId)
        .where("channel", "=", CHANNEL_NAME)
        .execute();
    },

    /** Records a test's result; touches nothing when the channel no longer exists. */
    async recordTest(userId: number, status: string, error: string, at: Date): Promise<void> {
      await db
        .updateTable("user_notification_channels")
        .set({ last_test_status: status, last_test_error: error, last_test_at: t(at), updated_at: t(at) })
        .where("user_id", "=", userId)
        .where("channel", "=", CHANNEL_NAME)
        .execute();
    },
  };
}

import { createCipheriv, randomBytes } from "node:crypto";
import { sql } from "kysely";
import type { App } from "../../src/app.ts";
import {
  ResealSecretsRequestSchema,
  ResealSecretsResponseSchema,
} from "../../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { createSecretBox } from "../../src/lib/secret-box.ts";
import type { ChannelUpsert } from "../../src/notifications/channel.ts";
import { createSqlChannelStore } from "../../src/notifications/sql/sql-channel-store.ts";
import { type CallOptions, rpcClient } from "./grpc-clients.ts";
import { query } from "./harness.ts";

export const newKey = () => randomBytes(32);
export const b64 = (key: Buffer) => key.toString("base64");

/** A value in the first sealed format (`enc:v1:`, no key id), as the earlier version of the service wrote it. */
export function sealV1(key: Buffer, plain: string): string {
  if (plain === "") return "";
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
  return `enc:v1:${Buffer.concat([iv, cipher.getAuthTag(), data]).toString("base64")}`;
}

/** The secrets of a channel, as the test expects to read them back. */
export interface Secrets {
  readonly webhookUrl: string;
  readonly bearerToken: string;
  readonly signingSecret: string;
}

/** A channel store over the app's database with these keys (what the service reads with them). */
export function storeWith(app: App, key: Buffer | undefined, previous?: Buffer) {
  return createSqlChannelStore(app.db.kysely, app.db.traits, createSecretBox(key, previous));
}

export function upsertOf(userId: number, secrets: Secrets): ChannelUpsert {
  return {
    userId: BigInt(userId),
    enabled: true,
    authType: secrets.bearerToken ? "bearer" : "none",
    webhookKind: secrets.signingSecret ? "group_bot" : "flow_trigger",
    ...secrets,
  };
}

/** Every channel's secrets, opened with these keys. */
export async function readSecrets(app: App, userIds: readonly number[], key: Buffer, previous?: Buffer) {
  const channels = await storeWith(app, key, previous).getMany(userIds.map(BigInt));
  return new Map(
    [...channels.values()].map((c) => [
      Number(c.userId),
      { webhookUrl: c.webhookUrl, bearerToken: c.bearerToken, signingSecret: c.signingSecret },
    ]),
  );
}

export interface RawRow {
  readonly user_id: number | string;
  readonly webhook_url: string;
  readonly bearer_token: string;
  readonly signing_secret: string | null;
}

export async function rawRows(app: App): Promise<RawRow[]> {
  return query<RawRow>(
    app,
    sql`select user_id, webhook_url, bearer_token, signing_secret from user_notification_channels order by id`,
  );
}

/** A row as SmartFlow's Go services (or an earlier version of this one) wrote it, values as given. */
export async function insertRawChannel(app: App, userId: number, values: Omit<RawRow, "user_id">) {
  const now = app.db.traits.time(new Date());
  await query(
    app,
    sql`insert into user_notification_channels (user_id, channel, enabled, webhook_url, auth_type, bearer_token,
        webhook_kind, signing_secret, created_at, updated_at)
        values (${userId}, 'feishu_webhook', 1, ${values.webhook_url}, ${values.bearer_token ? "bearer" : "none"},
        ${values.bearer_token}, ${values.signing_secret ? "group_bot" : "flow_trigger"}, ${values.signing_secret},
        ${now}, ${now})`,
  );
}

export const RESEAL_PATH = "/smartflow.notification.v1.NotificationOpsService/ResealSecrets";

/** Calls ResealSecrets through a real gRPC client. */
export async function resealOverGrpc(
  app: App,
  request: { batchSize?: number; limit?: number },
  options: CallOptions = {},
) {
  const client = rpcClient(`127.0.0.1:${app.apiPort()}`);
  try {
    const answer = await client.unary(
      RESEAL_PATH,
      ResealSecretsRequestSchema,
      ResealSecretsResponseSchema,
      request,
      { deadlineMs: 30_000, ...options },
    );
    return { resealed: Number(answer.resealedCount), remaining: Number(answer.remainingCount) };
  } finally {
    client.close();
  }
}

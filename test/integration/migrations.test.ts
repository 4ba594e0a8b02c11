import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { sql } from "kysely";
import { createDb } from "../../src/db/database.ts";
import { migrateToLatest } from "../../src/db/migrations.ts";
import { createTestDatabase } from "../support/mysql.ts";

async function indexNames(db: ReturnType<typeof createDb>, table: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select index_name as name from information_schema.statistics
    where table_schema = database() and table_name = ${table}`.execute(db.kysely);
  return [...new Set(rows.map((row) => row.name))];
}

describe("migrations on MariaDB", () => {
  test("run twice, and again after the outbox table name is overridden", async () => {
    const database = await createTestDatabase();
    const db = createDb({ kind: "mysql", url: database.url }, 2);
    try {
      const first = await migrateToLatest(db.kysely, db.traits, { outbox: "notification_outbox_messages" });
      assert.deepEqual(first, [
        "0002_notification_records",
        "0003_user_notification_channels",
        "0004_notification_request_keys",
      ]);
      assert.deepEqual(
        await migrateToLatest(db.kysely, db.traits, { outbox: "notification_outbox_messages" }),
        [],
      );
      await migrateToLatest(db.kysely, db.traits, { outbox: "renamed_outbox" });
      for (const table of ["notification_outbox_messages", "renamed_outbox"]) {
        assert.deepEqual((await indexNames(db, table)).sort(), [
          "PRIMARY",
          "idx_outbox_claim",
          "idx_outbox_status_next",
        ]);
      }
      assert.ok((await indexNames(db, "notification_records")).includes("uk_notification_dedupe"));
    } finally {
      await db.close();
      await database.drop();
    }
  });

  test("tables that SmartFlow's Go services created already get only the additions", async () => {
    const database = await createTestDatabase();
    const db = createDb({ kind: "mysql", url: database.url }, 2);
    try {
      // The shape GORM AutoMigrate gives the original's models (without our additive columns and index).
      await database.query(`create table notification_outbox_messages (
        id bigint unsigned auto_increment primary key, biz_type varchar(64) not null, service_name varchar(64),
        topic varchar(128) not null, message_key varchar(128) not null, payload longtext not null,
        status varchar(32) not null, retry_count bigint not null default 0, max_retry bigint not null default 20,
        next_retry_at datetime(3) null, last_error text null, published_at datetime(3) null,
        consumed_at datetime(3) null, created_at datetime(3) null, updated_at datetime(3) null,
        index idx_outbox_status_next (status, next_retry_at, biz_type))`);
      await database.query(`create table user_notification_channels (
        id bigint unsigned auto_increment primary key, user_id bigint not null, channel varchar(32) not null,
        enabled boolean not null default true, webhook_url text not null, auth_type varchar(32) not null default 'none',
        bearer_token text not null, last_test_status varchar(32), last_test_error text, last_test_at datetime(3) null,
        created_at datetime(3) null, updated_at datetime(3) null,
        unique index uk_user_notification_channel (user_id, channel))`);
      await database.query(`insert into user_notification_channels (user_id, channel, webhook_url, bearer_token)
        values (1, 'feishu_webhook', 'https://www.feishu.cn/flow/api/trigger-webhook/abcdefgh1234', '')`);
      await migrateToLatest(db.kysely, db.traits, { outbox: "notification_outbox_messages" });
      assert.ok((await indexNames(db, "notification_outbox_messages")).includes("idx_outbox_claim"));
      const [row] = await database.query<{ webhook_kind: string; signing_secret: string | null }>(
        "select webhook_kind, signing_secret from user_notification_channels where user_id = 1",
      );
      assert.equal(row?.webhook_kind, "flow_trigger");
    } finally {
      await db.close();
      await database.drop();
    }
  });
});

describe("migrations on SQLite", () => {
  test("run twice and after an override", async () => {
    const db = createDb({ kind: "sqlite", path: ":memory:" });
    try {
      await migrateToLatest(db.kysely, db.traits, { outbox: "notification_outbox_messages" });
      assert.deepEqual(
        await migrateToLatest(db.kysely, db.traits, { outbox: "notification_outbox_messages" }),
        [],
      );
      await migrateToLatest(db.kysely, db.traits, { outbox: "renamed_outbox" });
      const { rows } = await sql<{ name: string }>`select name from sqlite_master where type = 'index'
        and tbl_name = 'renamed_outbox'`.execute(db.kysely);
      assert.deepEqual(rows.map((r) => r.name).sort(), [
        "renamed_outbox_idx_outbox_claim",
        "renamed_outbox_idx_outbox_status_next",
      ]);
    } finally {
      await db.close();
    }
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { sql } from "kysely";
import { createDb } from "../../src/db/database.ts";
import { widenIdColumns } from "../../src/db/int64-id-migration.ts";
import { migrateToLatest } from "../../src/db/migrations.ts";
import { createTestDatabase } from "../support/mysql.ts";

interface ColumnView {
  data_type: string;
  column_type: string;
  is_nullable: string;
  column_default: string | null;
  column_comment: string;
}

async function idColumns(db: ReturnType<typeof createDb>): Promise<Record<string, ColumnView>> {
  const { rows } = await sql<ColumnView & { name: string }>`
    select concat(table_name, '.', column_name) as name, data_type, column_type, is_nullable, column_default,
      column_comment
    from information_schema.columns where table_schema = database()
      and table_name in ('notification_records', 'user_notification_channels')
      and column_name in ('user_id', 'target_id')`.execute(db.kysely);
  return Object.fromEntries(rows.map(({ name, ...column }) => [name, column]));
}

const ID_COLUMNS = [
  "notification_records.target_id",
  "notification_records.user_id",
  "user_notification_channels.user_id",
];

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
        "0005_int64_ids",
        "0006_notification_send_budgets",
        "0007_retention_indexes",
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
          "idx_outbox_retention",
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
      const goInsert = `insert into notification_outbox_messages (biz_type, topic, message_key, payload, status)
        values ('notification.feishu.requested', 't', 'k', '{}', 'pending')`;
      await database.query(goInsert);
      await migrateToLatest(db.kysely, db.traits, { outbox: "notification_outbox_messages" });
      assert.ok((await indexNames(db, "notification_outbox_messages")).includes("idx_outbox_claim"));
      // The attempt counters are added to the Go table, 0 on its rows and on the Go producers' later inserts
      // (which do not name them); a second start finds them and changes nothing.
      await database.query(goInsert);
      await migrateToLatest(db.kysely, db.traits, { outbox: "notification_outbox_messages" });
      const counters = await database.query<{ started_attempts: number; finished_attempts: number }>(
        "select started_attempts, finished_attempts from notification_outbox_messages order by id",
      );
      assert.deepEqual(
        counters.map((c) => [Number(c.started_attempts), Number(c.finished_attempts)]),
        [
          [0, 0],
          [0, 0],
        ],
      );
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

describe("64-bit id columns on MariaDB (migration 0005)", () => {
  test("a new install creates them bigint; INT columns this service created before are widened, keeping NOT NULL, default, comment and data", async () => {
    const database = await createTestDatabase();
    const db = createDb({ kind: "mysql", url: database.url }, 2);
    try {
      await migrateToLatest(db.kysely, db.traits, { outbox: "notification_outbox_messages" });
      const fresh = await idColumns(db);
      assert.deepEqual(Object.keys(fresh).sort(), ID_COLUMNS);
      for (const name of ID_COLUMNS) assert.equal(fresh[name]?.data_type, "bigint", name);

      // What the service before 64-bit ids left behind: INT columns (and migrations 0002–0004 recorded).
      await database.query(`alter table notification_records modify user_id int not null,
        modify target_id int not null default 0 comment 'what it is about'`);
      await database.query("alter table user_notification_channels modify user_id int null");
      await database.query("delete from smartflow_notification_migrations where name = '0005_int64_ids'");
      await database.query(`insert into user_notification_channels (user_id, channel, webhook_url, bearer_token)
        values (2147483647, 'feishu_webhook', 'https://www.feishu.cn/flow/api/trigger-webhook/abcdefgh1234', '')`);
      await assert.rejects(
        database.query(`insert into user_notification_channels (user_id, channel, webhook_url, bearer_token)
          values (2147483648, 'feishu_webhook', 'x', '')`),
        /out of range/i,
        "the old column cannot hold 2^31",
      );

      assert.deepEqual(
        await migrateToLatest(db.kysely, db.traits, { outbox: "notification_outbox_messages" }),
        ["0005_int64_ids"],
      );
      const widened = await idColumns(db);
      for (const name of ID_COLUMNS) assert.equal(widened[name]?.data_type, "bigint", name);
      assert.equal(widened["notification_records.user_id"]?.is_nullable, "NO");
      assert.equal(widened["notification_records.target_id"]?.is_nullable, "NO");
      assert.match(widened["notification_records.target_id"]?.column_default ?? "", /^'?0'?$/);
      assert.equal(widened["notification_records.target_id"]?.column_comment, "what it is about");
      assert.equal(widened["user_notification_channels.user_id"]?.is_nullable, "YES");
      await database.query(`insert into user_notification_channels (user_id, channel, webhook_url, bearer_token)
        values (9223372036854775807, 'feishu_webhook', 'x', '')`);
      const users = await database.query<{ user_id: string }>(
        "select cast(user_id as char) as user_id from user_notification_channels order by user_id",
      );
      assert.deepEqual(
        users.map((u) => u.user_id),
        ["2147483647", "9223372036854775807"],
      );

      // Idempotent: run again, nothing is left to widen and nothing changes.
      assert.deepEqual(await widenIdColumns(db.kysely, db.traits), []);
      assert.deepEqual(await idColumns(db), widened);
    } finally {
      await db.close();
      await database.drop();
    }
  });

  test("INT tables made by hand before any migration ran are widened too; the Go services' bigint ones are not touched", async () => {
    const database = await createTestDatabase();
    const db = createDb({ kind: "mysql", url: database.url }, 2);
    try {
      await database.query(`create table notification_records (
        id bigint auto_increment primary key, channel varchar(32) not null, user_id int not null,
        trigger_id varchar(64) not null, preview_id varchar(64) not null, trigger_type varchar(64) not null,
        target_type varchar(64) not null, target_id int not null, dedupe_key varchar(191) not null,
        target_url varchar(255) not null, summary_text text, fallback_text text,
        fallback_used boolean not null default false, status varchar(32) not null default 'pending',
        attempt_count int not null default 0, max_attempts int not null default 5, next_retry_at datetime(3),
        last_error_code varchar(64), last_error text, provider_message_id varchar(128), provider_request_json json,
        provider_response_json json, sent_at datetime(3), trace_id varchar(128), created_at datetime(3),
        updated_at datetime(3))`);
      // GORM AutoMigrate's shape for the Go model (Go's int is 64-bit: bigint).
      await database.query(`create table user_notification_channels (
        id bigint unsigned auto_increment primary key, user_id bigint not null comment 'go', channel varchar(32) not null,
        enabled boolean not null default true, webhook_url text not null, auth_type varchar(32) not null default 'none',
        bearer_token text not null, last_test_status varchar(32), last_test_error text, last_test_at datetime(3) null,
        created_at datetime(3) null, updated_at datetime(3) null,
        unique index uk_user_notification_channel (user_id, channel))`);
      const before = await idColumns(db);
      await migrateToLatest(db.kysely, db.traits, { outbox: "notification_outbox_messages" });
      const after = await idColumns(db);
      assert.equal(after["notification_records.user_id"]?.data_type, "bigint");
      assert.equal(after["notification_records.target_id"]?.data_type, "bigint");
      assert.deepEqual(
        after["user_notification_channels.user_id"],
        before["user_notification_channels.user_id"],
      );
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
        "renamed_outbox_idx_outbox_retention",
        "renamed_outbox_idx_outbox_status_next",
      ]);
    } finally {
      await db.close();
    }
  });
});

import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { encodeRowEnvelope } from "../src/outbox/envelope.ts";

export const mysqlServerUrl = process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306";

export function brokers(): string[] {
  const list = process.env.KAFKA_BROKERS?.split(",").filter(Boolean) ?? [];
  if (list.length === 0) throw new Error("KAFKA_BROKERS is not set: run benchmarks with `make bench`");
  return list;
}

export function unique(prefix: string) {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export async function withDatabase<T>(run: (url: string) => Promise<T>): Promise<T> {
  const name = `sfn_bench_${randomBytes(4).toString("hex")}`;
  const admin = await mysql.createConnection({ uri: mysqlServerUrl });
  await admin.query(`create database \`${name}\` character set utf8mb4`);
  const url = new URL(mysqlServerUrl);
  url.pathname = `/${name}`;
  try {
    return await run(url.toString());
  } finally {
    await admin.query(`drop database if exists \`${name}\``);
    await admin.end();
  }
}

/** A payload shaped like SmartFlow's notification.feishu.requested event (~400 bytes of envelope). */
export function eventPayload(userId: number, i: number) {
  return {
    user_id: userId,
    trigger_id: `ast_${i}`,
    preview_id: `asp_bench_${i}`,
    trigger_type: "unfinished_feedback",
    target_type: "task",
    target_id: i,
    dedupe_key: `${userId}:unfinished_feedback:${i}`,
    target_url: `/assistant/conv_${i}`,
    summary_text: "明天上午的两个任务时间冲突，建议把复习挪到下午三点。",
    fallback_text: "你有一条新的日程调整建议，请查看：/assistant/conv",
    requested_at: "2026-03-02T10:41:00+08:00",
  };
}

/**
 * Event `n` as a Go producer writes its outbox row: for user `1 + n % users`, a dedupe key tagged `tag`, due at
 * `stamp` (the database's wall-clock text).
 */
export function outboxRow(topic: string, n: number, users: number, tag: string, stamp: string) {
  const user = 1 + (n % users);
  const payload = {
    ...eventPayload(user, n),
    dedupe_key: `${user}:${tag}:${n}`,
    target_url: `/assistant/c${n}`,
  };
  return {
    biz_type: "notification.feishu.requested",
    service_name: "notification",
    topic,
    message_key: String(user),
    payload: encodeRowEnvelope({
      eventId: `asp_${n}`,
      eventType: "notification.feishu.requested",
      eventVersion: "1",
      aggregateId: `asp_${n}`,
      payload: JSON.stringify(payload),
    }),
    status: "pending",
    retry_count: 0,
    max_retry: 20,
    next_retry_at: stamp,
    created_at: stamp,
    updated_at: stamp,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

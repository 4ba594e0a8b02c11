import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";

/** The MariaDB/MySQL server the suite runs against (`MYSQL_URL`, default root@127.0.0.1:3306). */
export const mysqlServerUrl = process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306";

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  query<T = unknown>(statement: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

/** Creates a database of its own for one test (or file) and drops it afterwards. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `sfn_test_${randomBytes(5).toString("hex")}`;
  const admin = await mysql.createConnection({ uri: mysqlServerUrl, timezone: "local" });
  await admin.query(`create database \`${name}\` character set utf8mb4 collate utf8mb4_unicode_ci`);
  await admin.changeUser({ database: name });
  const base = new URL(mysqlServerUrl);
  base.pathname = `/${name}`;
  return {
    name,
    url: base.toString(),
    async query<T>(statement: string, params: unknown[] = []) {
      const [rows] = await admin.query(statement, params);
      return rows as T[];
    },
    async drop() {
      await admin.query(`drop database if exists \`${name}\``);
      await admin.end();
    },
  };
}

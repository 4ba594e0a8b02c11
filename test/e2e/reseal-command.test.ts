import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, test } from "node:test";
import { secretKeyId } from "../../src/lib/secret-box.ts";
import { createTestEnv, startApp, type TestEnv } from "../support/harness.ts";
import {
  b64,
  insertRawChannel,
  newKey,
  rawRows,
  readSecrets,
  storeWith,
  upsertOf,
} from "../support/secrets.ts";

/** `node --import tsx src/main.ts reseal-secrets`, as an operator runs it (dist/main.js in the image). */
async function runCommand(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "reseal-secrets"], {
    env: { ...process.env, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const [code] = await once(child, "exit");
  return { code: code as number, lines: stdout.split("\n").filter(Boolean), stderr };
}

let testEnv: TestEnv;
before(async () => {
  testEnv = await createTestEnv("mysql+kafka");
});
after(async () => {
  await testEnv.dispose();
});

test("reseal-secrets reseals every row on MariaDB and exits 0; a wrong previous key exits 1 naming the key", async () => {
  const oldKey = newKey();
  const currentKey = newKey();
  const url = (user: number) => `https://www.feishu.cn/flow/api/trigger-webhook/key${user}`;
  const users = Array.from({ length: 30 }, (_, i) => 1 + i);
  const app = await startApp(testEnv, { env: { SECRETS_KEY: b64(oldKey) } });
  try {
    const store = storeWith(app, oldKey);
    for (const user of users.slice(0, 25)) {
      await store.upsert(
        upsertOf(user, { webhookUrl: url(user), bearerToken: `tok-${user}`, signingSecret: "" }),
        new Date(),
      );
    }
    for (const user of users.slice(25)) {
      await insertRawChannel(app, user, { webhook_url: url(user), bearer_token: "", signing_secret: null });
    }
    const database = { DATABASE_URL: testEnv.env.DATABASE_URL ?? "" };

    const wrong = await runCommand({
      ...database,
      SECRETS_KEY: b64(currentKey),
      SECRETS_KEY_PREVIOUS: b64(newKey()),
    });
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      new RegExp(`reseal-secrets: .*"${secretKeyId(oldKey)}", which is not configured`),
    );

    const run = await runCommand({
      ...database,
      SECRETS_KEY: b64(currentKey),
      SECRETS_KEY_PREVIOUS: b64(oldKey),
    });
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.lines.at(-1) ?? "{}") as { resealed: number; remaining: number };
    // The wrong-key run may have resealed the plain-text rows it met before the first old-key row.
    assert.equal(result.remaining, 0);
    assert.ok(result.resealed >= 25 && result.resealed <= 30, `resealed ${result.resealed}`);
    const prefix = `enc:v2:${secretKeyId(currentKey)}:`;
    for (const row of await rawRows(app)) assert.ok(row.webhook_url.startsWith(prefix), String(row.user_id));
    const opened = await readSecrets(app, users, currentKey);
    for (const user of users) assert.equal(opened.get(user)?.webhookUrl, url(user));
  } finally {
    await app.stop();
  }
});

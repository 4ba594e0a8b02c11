import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config/load-config.ts";
import { createSecretBox } from "../../src/lib/secret-box.ts";

test("sealed secrets round-trip, differ every time, and refuse tampering", () => {
  const box = createSecretBox(randomBytes(32));
  const url = "https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-secret";
  const a = box.seal(url);
  const b = box.seal(url);
  assert.match(a, /^enc:v1:/);
  assert.notEqual(a, b, "a fresh IV each time");
  assert.ok(!a.includes("secret"));
  assert.equal(box.open(a), url);
  const raw = Buffer.from(a.slice("enc:v1:".length), "base64");
  raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1;
  assert.throws(() => box.open(`enc:v1:${raw.toString("base64")}`), /cannot be decrypted/);
  assert.throws(() => createSecretBox(randomBytes(32)).open(a), /cannot be decrypted/, "another key");
});

test("plain text passes through; sealed text without a key is an error, not a secret", () => {
  const box = createSecretBox(randomBytes(32));
  assert.equal(
    box.open("https://www.feishu.cn/flow/api/trigger-webhook/plain1234"),
    "https://www.feishu.cn/flow/api/trigger-webhook/plain1234",
  );
  assert.equal(box.seal(""), "", "empty stays empty");
  const none = createSecretBox(undefined);
  assert.equal(none.seal("tok"), "tok");
  assert.throws(() => none.open(box.seal("tok")), /SECRETS_KEY is not configured/);
});

test("SECRETS_KEY must be the base64 of 32 bytes", () => {
  const key = randomBytes(32).toString("base64");
  assert.equal(loadConfig({ SECRETS_KEY: key }).secretsKey?.length, 32);
  for (const bad of ["short", randomBytes(16).toString("base64"), `${key}x`]) {
    assert.throws(
      () => loadConfig({ SECRETS_KEY: bad }),
      (e: unknown) => e instanceof ConfigError && /SECRETS_KEY/.test(e.message),
    );
  }
});

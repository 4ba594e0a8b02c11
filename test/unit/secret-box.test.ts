import assert from "node:assert/strict";
import { createCipheriv, randomBytes } from "node:crypto";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config/load-config.ts";
import { createSecretBox, secretKeyId } from "../../src/lib/secret-box.ts";

test("sealed secrets round-trip, differ every time, and refuse tampering", () => {
  const box = createSecretBox(randomBytes(32));
  const url = "https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-secret";
  const a = box.seal(url);
  const b = box.seal(url);
  assert.match(a, /^enc:v2:[0-9a-f]{8}:/);
  assert.notEqual(a, b, "a fresh IV each time");
  assert.ok(!a.includes("secret"));
  assert.equal(box.open(a), url);
  const prefix = a.slice(0, "enc:v2:".length + 9);
  const raw = Buffer.from(a.slice(prefix.length), "base64");
  raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1;
  assert.throws(() => box.open(`${prefix}${raw.toString("base64")}`), /cannot be decrypted/);
  assert.throws(() => createSecretBox(randomBytes(32)).open(a), /not configured/, "another key");
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

/** A value in the first format (`enc:v1:`, no key id), as the earlier version sealed it. */
function sealV1(key: Buffer, plain: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
  return `enc:v1:${Buffer.concat([iv, cipher.getAuthTag(), data]).toString("base64")}`;
}

test("sealed values name their key; the previous key still opens what it sealed", () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const before = createSecretBox(oldKey);
  const sealedOld = before.seal("https://example.com/old");
  assert.ok(sealedOld.startsWith(`enc:v2:${secretKeyId(oldKey)}:`));
  const v1 = sealV1(oldKey, "tok-v1");
  assert.equal(before.open(v1), "tok-v1", "the first format is still read");

  const rotating = createSecretBox(newKey, oldKey);
  assert.equal(rotating.open(sealedOld), "https://example.com/old");
  assert.equal(rotating.open(v1), "tok-v1");
  const sealedNew = rotating.seal("https://example.com/new");
  assert.ok(sealedNew.startsWith(`enc:v2:${secretKeyId(newKey)}:`), "sealing uses the current key");
  assert.equal(rotating.keyId, secretKeyId(newKey));

  assert.equal(rotating.needsReseal(sealedOld), true);
  assert.equal(rotating.needsReseal(v1), true, "v1 does not say its key");
  assert.equal(rotating.needsReseal("https://plain.example.com/x"), true, "plain text, with a key set");
  assert.equal(rotating.needsReseal(sealedNew), false);
  assert.equal(rotating.needsReseal(""), false);
  assert.equal(createSecretBox(undefined).needsReseal("plain"), false, "nothing to seal with");

  const after = createSecretBox(newKey);
  assert.equal(after.open(sealedNew), "https://example.com/new");
  assert.throws(
    () => after.open(sealedOld),
    new RegExp(`id "${secretKeyId(oldKey)}", which is not configured`),
  );
});

test("a wrong previous key is a clear error naming the key ids, never a wrong secret", () => {
  const sealer = randomBytes(32);
  const sealed = createSecretBox(sealer).seal("secret");
  const v1 = sealV1(sealer, "secret");
  const wrong = createSecretBox(randomBytes(32), randomBytes(32));
  assert.throws(
    () => wrong.open(sealed),
    (e: unknown) =>
      e instanceof Error &&
      e.message.includes(secretKeyId(sealer)) &&
      /SECRETS_KEY has id [0-9a-f]{8}, SECRETS_KEY_PREVIOUS has id [0-9a-f]{8}/.test(e.message),
  );
  assert.throws(() => wrong.open(v1), /cannot be decrypted with SECRETS_KEY or SECRETS_KEY_PREVIOUS/);
  // A key id edited to name the other key fails authentication: the prefix is sealed with the data.
  const other = randomBytes(32);
  const box = createSecretBox(other, sealer);
  const forged = sealed.replace(secretKeyId(sealer), secretKeyId(other));
  assert.throws(() => box.open(forged), /cannot be decrypted with SECRETS_KEY \(key id/);
});

test("SECRETS_KEY_PREVIOUS needs SECRETS_KEY and must differ from it", () => {
  const key = randomBytes(32).toString("base64");
  const previous = randomBytes(32).toString("base64");
  const config = loadConfig({ SECRETS_KEY: key, SECRETS_KEY_PREVIOUS: previous });
  assert.equal(config.secrets.previousKey?.toString("base64"), previous);
  assert.equal(loadConfig({ SECRETS_KEY: key }).secrets.previousKey, undefined);
  assert.throws(
    () => loadConfig({ SECRETS_KEY_PREVIOUS: previous }),
    /SECRETS_KEY_PREVIOUS needs SECRETS_KEY/,
  );
  assert.throws(
    () => loadConfig({ SECRETS_KEY: key, SECRETS_KEY_PREVIOUS: key }),
    /SECRETS_KEY_PREVIOUS must differ from SECRETS_KEY/,
  );
  assert.throws(
    () => loadConfig({ SECRETS_KEY: key, SECRETS_KEY_PREVIOUS: "short" }),
    /SECRETS_KEY_PREVIOUS must be the base64 of exactly 32 bytes/,
  );
});

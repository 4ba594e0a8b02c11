/**
 * GetFeishuWebhook's hot path shares work between concurrent calls: one `WHERE user_id IN (…)` read serves
 * every call waiting for it, and the calls for one user in that read share one answer, built and encoded
 * once. Sharing must never hand a caller another user's answer, nor an answer read before its own call's
 * preceding write.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { App } from "../../src/app.ts";
import { legacyClient } from "../support/grpc-clients.ts";
import { backends, createTestEnv, startApp, type TestEnv } from "../support/harness.ts";

type Channel = { webhook_url_mask: string; configured: boolean };

/** Users around the edges of the id range (2³¹ and 2⁶³−1 included) and a run of small ones. */
const users = [
  ...Array.from({ length: 40 }, (_, i) => String(i + 1)),
  "2147483647",
  "2147483648",
  "5000000000",
  "9223372036854775806",
  "9223372036854775807",
];

/** A Flow trigger URL whose mask (first and last 4 characters of the key) names the user and a generation. */
function url(user: string, generation: number) {
  const tag = user.slice(-3).padStart(3, "0");
  return `https://www.feishu.cn/flow/api/trigger-webhook/${tag}a${"x".repeat(12)}${generation}${tag}`;
}
const mask = (user: string, generation: number) => {
  const tag = user.slice(-3).padStart(3, "0");
  return `https://www.feishu.cn/flow/api/trigger-webhook/${tag}a...${generation}${tag}`;
};

for (const backend of backends) {
  describe(`concurrent channel reads (${backend})`, () => {
    let testEnv: TestEnv;
    let app: App;
    let client: ReturnType<typeof legacyClient>;
    before(async () => {
      testEnv = await createTestEnv(backend);
      app = await startApp(testEnv);
      client = legacyClient(`127.0.0.1:${app.apiPort()}`);
    });
    after(async () => {
      client.close();
      await app.stop();
      await testEnv.dispose();
    });

    const get = (user: string) => client.call<Channel>("GetFeishuWebhook", { user_id: user });
    const save = (user: string, generation: number) =>
      client.call<Channel>("SaveFeishuWebhook", {
        user_id: user,
        enabled: true,
        webhook_url: url(user, generation),
        auth_type: "none",
      });

    test("hundreds of concurrent gets over many users each answer their own user", async () => {
      await Promise.all(users.map((user) => save(user, 1)));
      const asked = Array.from({ length: 10 }, () => users).flat();
      asked.push("77777", "9223372036854775805"); // users without a channel
      const answers = await Promise.all(asked.map(async (user) => ({ user, channel: await get(user) })));
      for (const { user, channel } of answers) {
        if (user === "77777" || user === "9223372036854775805") {
          assert.deepEqual([channel.configured, channel.webhook_url_mask], [false, ""], user);
        } else {
          assert.deepEqual([channel.configured, channel.webhook_url_mask], [true, mask(user, 1)], user);
        }
      }
    });

    test("a get that follows a save sees it, while other gets of the same user are in flight", async () => {
      const user = "9223372036854775807";
      await save(user, 1);
      for (let generation = 2; generation <= 9; generation++) {
        // Gets of the old value keep the shared read busy while the save lands.
        const background = Array.from({ length: 30 }, () => get(user));
        const saved = await save(user, generation);
        assert.equal(saved.webhook_url_mask, mask(user, generation));
        const after = await Promise.all([get(user), get(user), get(user)]);
        for (const channel of after) assert.equal(channel.webhook_url_mask, mask(user, generation));
        for (const channel of await Promise.all(background)) {
          assert.ok(
            [mask(user, generation - 1), mask(user, generation)].includes(channel.webhook_url_mask),
            channel.webhook_url_mask,
          );
        }
      }
      await client.call("DeleteFeishuWebhook", { user_id: user });
      assert.equal((await get(user)).configured, false);
    });
  });
}

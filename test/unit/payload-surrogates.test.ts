import assert from "node:assert/strict";
import { test } from "node:test";
import { parseFeishuRequestedPayload } from "../../src/notifications/feishu-requested-payload.ts";

// Found by the consumer fuzzer: on SQLite a dedupe key with a lone surrogate was stored as U+FFFD and then not
// found again ("record … vanished during intake"), so the row was retried instead of taken in.
test("lone surrogates in a payload's strings read as U+FFFD, as Go's encoding/json reads them", () => {
  const payload = parseFeishuRequestedPayload(
    JSON.stringify({
      user_id: 1,
      preview_id: "asp_\ud800x",
      dedupe_key: "1:\udc00:k",
      target_url: "/assistant/\ud83d",
      summary_text: "ok \ud83d\ude00 \ud800",
      requested_at: "2026-03-02T10:41:00+08:00",
    }),
  );
  assert.equal(payload.previewId, "asp_\ufffdx");
  assert.equal(payload.dedupeKey, "1:\ufffd:k");
  assert.equal(payload.targetUrl, "/assistant/\ufffd");
  assert.equal(payload.summaryText, "ok \ud83d\ude00 \ufffd", "a valid pair is kept");
});

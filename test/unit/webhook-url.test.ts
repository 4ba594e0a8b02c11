import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createFeishuWebhookPolicy,
  maskWebhookUrl,
  parseStoredWebhookUrl,
} from "../../src/channels/feishu/webhook-url.ts";
import { loadConfig } from "../../src/config/load-config.ts";

const hosts = loadConfig({}).feishu.allowedHosts;
const FLOW = "https://www.feishu.cn/flow/api/trigger-webhook/";

/** Keys of upper-case hex: no run of theirs can occur by chance in a host or path prefix (lower case). */
function keys(): string[] {
  const out: string[] = [];
  let seed = 7;
  const digit = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return "0123456789ABCDEF"[seed % 16] as string;
  };
  for (const length of [0, 1, 4, 8, 9, 12, 16, 24, 32, 64, 128]) {
    out.push(Array.from({ length }, digit).join(""));
  }
  return out;
}

/** Every shape a stored URL was seen in, or could be: Go saved whatever passed a prefix check. */
const shapes: ((key: string) => string)[] = [
  (k) => `${FLOW}${k}`,
  (k) => `${FLOW}${k}/`,
  (k) => `${FLOW}${k}//`,
  (k) => `${FLOW}${k}?key=${k}`,
  (k) => `${FLOW}${k}/?sig=${k}#${k}`,
  (k) => `${FLOW}${k}#frag-${k}`,
  (k) => `${FLOW}${k}/extra`,
  (k) => `${FLOW}${k}/a/b/c/`,
  (k) => `${FLOW}${k.slice(0, 3)}%zz${k.slice(3)}`,
  (k) => `${FLOW}${k}%`,
  (k) => `${FLOW}%E4%BD%A0${k}`,
  (k) => `  ${FLOW}${k}  `,
  (k) => `HTTPS://WWW.FEISHU.CN/flow/api/trigger-webhook/${k}`,
  (k) => `https://user:${k}@www.feishu.cn/flow/api/trigger-webhook/${k}`,
  (k) => `https://open.feishu.cn/open-apis/bot/v2/hook/${k}/`,
  (k) => `https://www.feishu.cn/somewhere/else/${k}`,
  (k) => `https://www.feishu.cn/${k}/flow`,
  (k) => `https://www.feishu.cn?${k}`,
  (k) => `http://[::1/${k}`,
  (k) => `www.feishu.cn/flow/api/trigger-webhook/${k}`,
  (k) => `${k}`,
  (k) => `not a url ${k}`,
  (k) => `mailto:${k}@feishu.cn`,
];

/** The longest run of `key`'s characters that `masked` shows. */
function longestRun(masked: string, key: string): number {
  let longest = 0;
  for (let i = 0; i < key.length; i++) {
    for (let j = i + longest + 1; j <= key.length; j++) {
      if (masked.includes(key.slice(i, j))) longest = j - i;
      else break;
    }
  }
  return longest;
}

test("masking never throws and never shows more than the first and last 4 characters of a key", () => {
  for (const key of keys()) {
    for (const shape of shapes) {
      const raw = shape(key);
      let masked = "";
      assert.doesNotThrow(() => {
        masked = maskWebhookUrl(raw);
      }, raw);
      assert.ok(longestRun(masked, key) <= 4, `${raw} → ${masked}`);
      if (key.length > 8) {
        const showsHead = masked.includes(key.slice(0, 4)) ? 1 : 0;
        const showsTail = masked.includes(key.slice(-4)) ? 1 : 0;
        assert.ok(showsHead + showsTail <= 2, `${raw} → ${masked}`);
      }
    }
  }
});

test("masks keep SmartFlow's shape: the key's first and last 4 around '...', query and fragment dropped", () => {
  const cases: [string, string][] = [
    [`${FLOW}abcdefgh12345678`, `${FLOW}abcd...5678`],
    [`${FLOW}abcdefgh12345678/`, `${FLOW}abcd...5678`],
    [`${FLOW}abcdefgh12345678?sig=x#f`, `${FLOW}abcd...5678`],
    [`${FLOW}abcdefgh12345678/more/`, `${FLOW}abcd...more`],
    [`${FLOW}short`, `${FLOW}****`],
    [`${FLOW}ab%zzcdefgh12345678`, `${FLOW}ab%z...5678`],
    [`${FLOW}`, FLOW],
    [
      "https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-4e5f-6789",
      "https://open.feishu.cn/open-apis/bot/v2/hook/0a1b...6789",
    ],
    ["https://user:pw@www.feishu.cn/x/abcdefgh12345678", "https://www.feishu.cn/x/ab...5678"],
    ["garbage-secret-token", "garb...oken"],
    ["", ""],
  ];
  for (const [raw, masked] of cases) assert.equal(maskWebhookUrl(raw), masked, raw);
});

test("a stored URL is sent where Go would send it: https, an allowed host, a Flow or bot path", () => {
  const accepted: [string, string][] = [
    [`${FLOW}abcdefgh1234`, `${FLOW}abcdefgh1234`],
    [`${FLOW}abcdefgh1234/`, `${FLOW}abcdefgh1234/`],
    [`${FLOW}abcdefgh1234?from=go`, `${FLOW}abcdefgh1234?from=go`],
    [`${FLOW}abc`, `${FLOW}abc`],
    [`${FLOW}abcdefgh1234#frag`, `${FLOW}abcdefgh1234`],
    [` ${FLOW}Key_With-Dash%41 `, `${FLOW}Key_With-Dash%41`],
    [
      "https://feishu.cn/flow/api/trigger-webhook/abcdefgh1234",
      "https://feishu.cn/flow/api/trigger-webhook/abcdefgh1234",
    ],
    [
      "https://open.feishu.cn/open-apis/bot/v2/hook/tok/",
      "https://open.feishu.cn/open-apis/bot/v2/hook/tok/",
    ],
  ];
  for (const [raw, url] of accepted) {
    const parsed = parseStoredWebhookUrl(raw, hosts);
    assert.deepEqual(parsed.ok ? parsed.url : parsed.reason, url, raw);
  }
  const refused: [string, RegExp][] = [
    [`http://www.feishu.cn/flow/api/trigger-webhook/abcdefgh1234`, /https/],
    ["https://evil.example/flow/api/trigger-webhook/abcdefgh1234", /not allowed/],
    ["https://user:pw@www.feishu.cn/flow/api/trigger-webhook/abcdefgh1234", /credentials/],
    ["https://www.feishu.cn/other/abcdefgh1234", /Flow trigger/],
    ["https://www.feishu.cn/flow/api/trigger-webhook/../../x", /Flow trigger/],
    [`${FLOW}ab%zzcd`, /escape/],
    ["not a url", /not a valid URL/],
  ];
  for (const [raw, reason] of refused) {
    const parsed = parseStoredWebhookUrl(raw, hosts);
    assert.equal(parsed.ok, false, raw);
    if (!parsed.ok) assert.match(parsed.reason, reason, raw);
  }
});

test("the policy: saves stay strict, stored URLs are read leniently", () => {
  const policy = createFeishuWebhookPolicy(hosts);
  for (const goEra of [`${FLOW}abcdefgh1234/`, `${FLOW}abcdefgh1234?x=1`, `${FLOW}abc`]) {
    assert.equal(policy.parse(goEra).ok, false, `a new save of ${goEra}`);
    assert.equal(policy.parseStored(goEra).ok, true, `a stored ${goEra}`);
  }
});

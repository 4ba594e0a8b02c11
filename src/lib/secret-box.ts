import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { AppError } from "./errors.ts";

/** The first format: no key id, so a reader may have to try each key it has. Read, never written. */
const V1 = "enc:v1:";
const V2 = "enc:v2:";

/**
 * Seals secrets for storage with AES-256-GCM (random 96-bit IV, 128-bit tag):
 * `enc:v2:<key id>:<base64(iv|tag|data)>`, where the key id is the hex of the first 4 bytes of the key's
 * SHA-256 (it names the key without revealing it) and the `enc:v2:<key id>:` prefix is authenticated too.
 * Values in the first format, `enc:v1:<base64(iv|tag|data)>`, are still read.
 *
 * Without a key, values are stored as they are (SmartFlow's behaviour). Reading accepts both, so rows written
 * in plain text (by SmartFlow's Go services, or before a key was configured) keep working and are sealed the
 * next time they are saved (or by the reseal job). A sealed value read without its key, or tampered with, is
 * an error, never a wrong secret.
 *
 * Key rotation: with a previous key, values it sealed are still opened; `needsReseal` tells which stored
 * values are not sealed with the current key, for the job that seals them again.
 */
export interface SecretBox {
  readonly sealing: boolean;
  /** The current key's id (undefined without a key). */
  readonly keyId: string | undefined;
  /** The prefix of every value sealed with the current key (undefined without a key). */
  readonly currentPrefix: string | undefined;
  seal(plain: string): string;
  open(stored: string): string;
  /** True when a current key is configured and `stored` is not "" nor sealed with it. */
  needsReseal(stored: string): boolean;
}

/** The id of a key as sealed values name it: hex of the first 4 bytes of its SHA-256. */
export function secretKeyId(key: Buffer): string {
  return createHash("sha256").update(key).digest().subarray(0, 4).toString("hex");
}

interface NamedKey {
  readonly key: Buffer;
  readonly id: string;
  /** The config key it came from, for error messages. */
  readonly name: string;
}

export function createSecretBox(key: Buffer | undefined, previous?: Buffer): SecretBox {
  for (const k of [key, previous]) {
    if (k && k.length !== 32) throw new Error("a secret box key must be 32 bytes");
  }
  if (previous && !key) throw new Error("a previous key needs a current key");
  const current: NamedKey | undefined = key && { key, id: secretKeyId(key), name: "SECRETS_KEY" };
  const old: NamedKey | undefined = previous && {
    key: previous,
    id: secretKeyId(previous),
    name: "SECRETS_KEY_PREVIOUS",
  };
  const keys = [current, old].filter((k): k is NamedKey => k !== undefined);
  const currentPrefix = current && `${V2}${current.id}:`;
  return {
    sealing: current !== undefined,
    keyId: current?.id,
    currentPrefix,
    seal(plain) {
      if (!current || !currentPrefix || plain === "") return plain;
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", current.key, iv);
      cipher.setAAD(Buffer.from(currentPrefix));
      const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
      return currentPrefix + Buffer.concat([iv, cipher.getAuthTag(), data]).toString("base64");
    },
    open(stored) {
      if (stored.startsWith(V2)) return openV2(stored, keys);
      if (stored.startsWith(V1)) return openV1(stored, keys);
      return stored;
    },
    needsReseal(stored) {
      return currentPrefix !== undefined && stored !== "" && !stored.startsWith(currentPrefix);
    },
  };
}

function openV2(stored: string, keys: readonly NamedKey[]): string {
  const end = stored.indexOf(":", V2.length);
  const id = end < 0 ? "" : stored.slice(V2.length, end);
  const named = keys.find((k) => k.id === id);
  if (!named) {
    const known = keys.map((k) => `${k.name} has id ${k.id}`).join(", ");
    throw new AppError(
      "internal",
      `a stored secret was sealed with the key of id ${JSON.stringify(id)}, which is not configured (${known || "SECRETS_KEY is not configured"})`,
    );
  }
  const prefix = stored.slice(0, end + 1);
  const opened = decrypt(named.key, stored.slice(prefix.length), Buffer.from(prefix));
  if (opened === undefined) {
    throw new AppError("internal", `a stored secret cannot be decrypted with ${named.name} (key id ${id})`);
  }
  return opened;
}

function openV1(stored: string, keys: readonly NamedKey[]): string {
  if (keys.length === 0) {
    throw new AppError("internal", "a stored secret is encrypted and SECRETS_KEY is not configured");
  }
  for (const named of keys) {
    const opened = decrypt(named.key, stored.slice(V1.length), undefined);
    if (opened !== undefined) return opened;
  }
  throw new AppError(
    "internal",
    `a stored secret cannot be decrypted with ${keys.map((k) => k.name).join(" or ")}`,
  );
}

/** The plain text, or undefined when the key is not the one that sealed it (or the value was tampered with). */
function decrypt(key: Buffer, base64: string, aad: Buffer | undefined): string | undefined {
  const raw = Buffer.from(base64, "base64");
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
    if (aad) decipher.setAAD(aad);
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}

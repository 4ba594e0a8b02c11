import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { AppError } from "./errors.ts";

const PREFIX = "enc:v1:";

/**
 * Seals secrets for storage with AES-256-GCM (random 96-bit IV, 128-bit tag): `enc:v1:<base64(iv|tag|data)>`.
 * Without a key, values are stored as they are (SmartFlow's behaviour). Reading accepts both, so rows written
 * in plain text (by SmartFlow's Go services, or before a key was configured) keep working and are sealed the
 * next time they are saved. A sealed value read without the key, or tampered with, is an error, never a
 * wrong secret.
 */
export interface SecretBox {
  readonly sealing: boolean;
  seal(plain: string): string;
  open(stored: string): string;
}

export function createSecretBox(key: Buffer | undefined): SecretBox {
  if (key && key.length !== 32) throw new Error("a secret box key must be 32 bytes");
  return {
    sealing: key !== undefined,
    seal(plain) {
      if (!key || plain === "") return plain;
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
      return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), data]).toString("base64");
    },
    open(stored) {
      if (!stored.startsWith(PREFIX)) return stored;
      if (!key) {
        throw new AppError("internal", "a stored secret is encrypted and SECRETS_KEY is not configured");
      }
      const raw = Buffer.from(stored.slice(PREFIX.length), "base64");
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
        decipher.setAuthTag(raw.subarray(12, 28));
        return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
      } catch (error) {
        throw new AppError("internal", "a stored secret cannot be decrypted with SECRETS_KEY", {
          cause: error,
        });
      }
    },
  };
}

/**
 * Reads gRPC length-prefixed messages (1 flag byte, 4 bytes big-endian length, the bytes) from a stream's
 * chunks as they arrive, like grpc-js's StreamDecoder: a length over the limit is reported as soon as its
 * prefix is read, before any of the body is buffered; a trailing partial frame is simply never completed.
 */
export interface ReadMessage {
  /** The flag byte is 1 (grpc-js treats any other value as uncompressed, and so does this). */
  readonly compressed: boolean;
  readonly bytes: Buffer;
}

export interface ReadResult {
  readonly messages: readonly ReadMessage[];
  /** The declared length of a message over the limit; nothing more is read after it. */
  readonly tooLarge?: number;
}

const NONE: readonly ReadMessage[] = [];

export function createMessageReader(maxMessageBytes: number) {
  let prefix = Buffer.alloc(0);
  let body: Buffer[] = [];
  let bodyLength = -1;
  let bodyReceived = 0;
  let flag = 0;
  let failed = false;

  function push(chunk: Buffer): ReadResult {
    if (failed) return { messages: NONE };
    let messages: ReadMessage[] | undefined;
    let offset = 0;
    while (offset < chunk.length) {
      if (bodyLength < 0) {
        // The common case, a whole frame in one chunk, reads without copying.
        if (prefix.length === 0 && chunk.length - offset >= 5) {
          flag = chunk[offset] as number;
          bodyLength = chunk.readUInt32BE(offset + 1);
          offset += 5;
        } else {
          const take = Math.min(5 - prefix.length, chunk.length - offset);
          prefix = Buffer.concat([prefix, chunk.subarray(offset, offset + take)]);
          offset += take;
          if (prefix.length < 5) break;
          flag = prefix[0] as number;
          bodyLength = prefix.readUInt32BE(1);
          prefix = Buffer.alloc(0);
        }
        if (bodyLength > maxMessageBytes) {
          failed = true;
          return { messages: messages ?? NONE, tooLarge: bodyLength };
        }
        body = [];
        bodyReceived = 0;
      }
      const take = Math.min(bodyLength - bodyReceived, chunk.length - offset);
      if (take > 0) body.push(chunk.subarray(offset, offset + take));
      bodyReceived += take;
      offset += take;
      if (bodyReceived === bodyLength) {
        const bytes = body.length === 1 ? (body[0] as Buffer) : Buffer.concat(body, bodyLength);
        if (!messages) messages = [];
        messages.push({ compressed: flag === 1, bytes });
        bodyLength = -1;
        body = [];
      }
    }
    return { messages: messages ?? NONE };
  }

  return { push };
}

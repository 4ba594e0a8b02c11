/**
 * Reads gRPC length-prefixed messages (1 flag byte, 4 bytes big-endian length, the bytes) from a stream's
 * chunks as they arrive, like grpc-js's StreamDecoder: a length over the limit is reported as soon as its
 * prefix is read, before any of the body is buffered; a trailing partial frame is simply never completed.
 * Built for unary calls: it keeps the first message and counts the others (allocation-free per chunk).
 */
export interface ReadMessage {
  /** The flag byte is 1 (grpc-js treats any other value as uncompressed, and so does this). */
  readonly compressed: boolean;
  readonly bytes: Buffer;
}

export class MessageReader {
  /** The first complete message. */
  first: ReadMessage | undefined = undefined;
  /** Complete messages read so far. */
  count = 0;
  private prefix: Buffer | undefined = undefined;
  private body: Buffer[] = [];
  private bodyLength = -1;
  private bodyReceived = 0;
  private flag = 0;
  private failed = false;

  constructor(private readonly maxMessageBytes: number) {}

  /** Reads a chunk; returns the declared length of a message over the limit (nothing more is read), else -1. */
  push(chunk: Buffer): number {
    if (this.failed) return -1;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.bodyLength < 0) {
        // The common case, a whole prefix in one chunk, reads without copying.
        if (this.prefix === undefined && chunk.length - offset >= 5) {
          this.flag = chunk[offset] as number;
          this.bodyLength = chunk.readUInt32BE(offset + 1);
          offset += 5;
        } else {
          const have = this.prefix?.length ?? 0;
          const take = Math.min(5 - have, chunk.length - offset);
          const part = chunk.subarray(offset, offset + take);
          this.prefix = this.prefix ? Buffer.concat([this.prefix, part]) : Buffer.from(part);
          offset += take;
          if (this.prefix.length < 5) break;
          this.flag = this.prefix[0] as number;
          this.bodyLength = this.prefix.readUInt32BE(1);
          this.prefix = undefined;
        }
        if (this.bodyLength > this.maxMessageBytes) {
          this.failed = true;
          return this.bodyLength;
        }
        this.bodyReceived = 0;
      }
      const take = Math.min(this.bodyLength - this.bodyReceived, chunk.length - offset);
      if (take > 0) this.body.push(chunk.subarray(offset, offset + take));
      this.bodyReceived += take;
      offset += take;
      if (this.bodyReceived === this.bodyLength) this.complete();
    }
    return -1;
  }

  private complete() {
    const bytes =
      this.body.length === 1 ? (this.body[0] as Buffer) : Buffer.concat(this.body, this.bodyLength);
    if (this.count === 0) this.first = { compressed: this.flag === 1, bytes };
    this.count++;
    this.bodyLength = -1;
    this.body = [];
  }
}

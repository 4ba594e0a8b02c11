/**
 * HTTP/2 at the frame level, for hostile-peer tests: a raw TCP client that writes hand-built frames (HPACK
 * literals without indexing, so no encoder state) and reads the server's frames back by type. It does not
 * decode the server's header blocks (that needs a full HPACK decoder); what it observes is which frames come
 * back on which stream (HEADERS with END_STREAM, RST_STREAM and its code, GOAWAY) and when the socket closes.
 */
import { once } from "node:events";
import { connect, type Socket } from "node:net";

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export const FrameType = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
} as const;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)) {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK integer with an n-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, firstByteFlags = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByteFlags | value]);
  const bytes = [firstByteFlags | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** A header block of literal fields without indexing, new names, no Huffman coding. */
export function headerBlock(headers: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    parts.push(Buffer.from([0x00]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v);
  }
  return Buffer.concat(parts);
}

export const settingsFrame = (settings: Record<number, number> = {}) => {
  const entries = Object.entries(settings);
  const payload = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(Number(id), i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, payload);
};
export const headersFrame = (
  streamId: number,
  headers: readonly (readonly [string, string])[],
  endStream = false,
) => frame(FrameType.HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), streamId, headerBlock(headers));
export const dataFrame = (streamId: number, data: Buffer, endStream = false) =>
  frame(FrameType.DATA, endStream ? END_STREAM : 0, streamId, data);
export const rstStreamFrame = (streamId: number, code: number) => {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FrameType.RST_STREAM, 0, streamId, payload);
};

/** A gRPC length-prefixed message. */
export function grpcFrame(message: Uint8Array, compressed = false, declaredLength = message.length): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = compressed ? 1 : 0;
  out.writeUInt32BE(declaredLength, 1);
  out.set(message, 5);
  return out;
}

export interface ReceivedFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** A raw HTTP/2 (or any bytes) connection that records every frame the server sends. */
export async function rawConnection(port: number) {
  const socket: Socket = connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  await once(socket, "connect");
  const frames: ReceivedFrame[] = [];
  const waiters = new Set<() => void>();
  let buffer = Buffer.alloc(0);
  let closed = false;
  const notify = () => {
    for (const check of waiters) check();
  };
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 9) {
      const length = buffer.readUIntBE(0, 3);
      if (buffer.length < 9 + length) break;
      frames.push({
        type: buffer[3] as number,
        flags: buffer[4] as number,
        streamId: buffer.readUInt32BE(5) & 0x7fffffff,
        payload: buffer.subarray(9, 9 + length),
      });
      buffer = buffer.subarray(9 + length);
    }
    notify();
  });
  socket.on("close", () => {
    closed = true;
    notify();
  });
  // The server's SETTINGS must be acknowledged, or it will not apply ours and may time out.
  const acked = new Set<ReceivedFrame>();
  waiters.add(() => {
    for (const f of frames) {
      if (f.type === FrameType.SETTINGS && !(f.flags & ACK) && !acked.has(f) && !closed) {
        acked.add(f);
        socket.write(frame(FrameType.SETTINGS, ACK, 0));
      }
    }
  });

  return {
    socket,
    frames,
    get closed() {
      return closed;
    },
    write: (bytes: Buffer) => new Promise<void>((resolve) => socket.write(bytes, () => resolve())),
    /** The client preface, an empty SETTINGS frame, and a large connection window. */
    async handshake(settings: Record<number, number> = {}) {
      const windowUpdate = Buffer.alloc(4);
      windowUpdate.writeUInt32BE(1 << 30);
      socket.write(
        Buffer.concat([PREFACE, settingsFrame(settings), frame(FrameType.WINDOW_UPDATE, 0, 0, windowUpdate)]),
      );
    },
    /** Resolves when `predicate` holds over the frames received so far (or the socket closed). */
    until(predicate: (frames: readonly ReceivedFrame[], closed: boolean) => boolean, timeoutMs = 20_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate(frames, closed)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out; frames: ${frames.map((f) => `${f.type}@${f.streamId}`).join(",")}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    /** The stream's outcome: `answered` (HEADERS with END_STREAM, or DATA then trailers), `rst <code>`. */
    streamOutcome(streamId: number): string | undefined {
      for (const f of frames) {
        if (f.streamId !== streamId) continue;
        if (f.type === FrameType.RST_STREAM) return `rst ${f.payload.readUInt32BE(0)}`;
        if (f.type === FrameType.HEADERS && f.flags & END_STREAM) return "answered";
      }
      return undefined;
    },
    goaway(): { lastStreamId: number; code: number } | undefined {
      const f = frames.find((x) => x.type === FrameType.GOAWAY);
      return f
        ? { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) }
        : undefined;
    },
    close: () => socket.destroy(),
  };
}

export type RawConnection = Awaited<ReturnType<typeof rawConnection>>;

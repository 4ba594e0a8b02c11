import { promisify } from "node:util";
import { gunzip, inflate as zlibInflate } from "node:zlib";
import { Code } from "@connectrpc/connect";
import { RpcFailure } from "./error-mapping.ts";

export type GrpcEncoding = "gzip" | "deflate";

const decompressors = { gzip: promisify(gunzip), deflate: promisify(zlibInflate) };

/**
 * Inflates a compressed request message on libuv's thread pool (never on the event loop), stopping at
 * `maxBytes`: a bomb costs at most that much memory and answers RESOURCE_EXHAUSTED, as grpc-js does; bytes
 * that are not valid for the encoding answer INTERNAL, as grpc-js does.
 */
export async function inflate(encoding: GrpcEncoding, data: Buffer, maxBytes: number): Promise<Buffer> {
  try {
    return await decompressors[encoding](data, { maxOutputLength: Math.max(1, maxBytes) });
  } catch (error) {
    if ((error as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new RpcFailure(
        Code.ResourceExhausted,
        `Received message that decompresses to a size larger than ${maxBytes}`,
      );
    }
    throw new RpcFailure(Code.Internal, "Failed to decompress message");
  }
}

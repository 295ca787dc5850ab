/**
 * Text assembled as UTF-8 bytes in chunks of bounded size: a large document (the snapshot) is built
 * by copying its parts' bytes, so that neither a large string nor one large buffer is ever made, and
 * each chunk is written as it is.
 */

/** Bytes of a chunk, unless one part alone is larger. */
const defaultChunkBytes = 1 << 20;

export class ByteChunks {
  private readonly full: Buffer[] = [];
  private chunk: Buffer;
  private used = 0;

  constructor(private readonly chunkBytes = defaultChunkBytes) {
    this.chunk = Buffer.allocUnsafe(chunkBytes);
  }

  /** Adds a string as UTF-8. */
  text(text: string): void {
    // A UTF-16 code unit takes at most 3 bytes of UTF-8.
    this.reserve(3 * text.length);
    this.used += this.chunk.write(text, this.used);
  }

  /** Adds bytes. */
  bytes(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.chunk.set(bytes, this.used);
    this.used += bytes.length;
  }

  /** The chunks in order; the instance must not be used after. */
  done(): Buffer[] {
    if (this.used > 0) this.full.push(this.chunk.subarray(0, this.used));
    return this.full;
  }

  private reserve(bytes: number): void {
    if (this.used + bytes <= this.chunk.length) return;
    if (this.used > 0) this.full.push(this.chunk.subarray(0, this.used));
    this.chunk = Buffer.allocUnsafe(Math.max(this.chunkBytes, bytes));
    this.used = 0;
  }
}

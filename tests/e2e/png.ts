/**
 * Just enough of a PNG decoder to tell a screenshot from a blank one: 8-bit greyscale, RGB or RGBA,
 * not interlaced (what Chromium writes), into RGBA pixels. Tests only.
 */
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';

/** Decoded pixels, 4 bytes (RGBA) each, row by row. */
export interface Pixels {
  readonly width: number;
  readonly height: number;
  readonly rgba: Uint8Array;
}

const channelsOf: Readonly<Record<number, number>> = { 0: 1, 2: 3, 4: 2, 6: 4 };

export function decodePng(png: Buffer): Pixels {
  assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'PNG signature');
  let offset = 8;
  let width = 0, height = 0, colourType = 0;
  const data: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const body = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      assert.equal(body[8], 8, 'bit depth 8');
      colourType = body[9] as number;
      assert.equal(body[12], 0, 'not interlaced');
    } else if (type === 'IDAT') {
      data.push(body);
    }
    offset += 12 + length;
  }
  const channels = channelsOf[colourType];
  assert.ok(channels !== undefined, `colour type ${colourType}`);
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  const out = new Uint8Array(width * height * 4);
  let previous: Uint8Array = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)] as number;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = unfilter(filter, line, previous, channels);
    for (let x = 0; x < width; x++) {
      const source = x * channels;
      const target = (y * width + x) * 4;
      const grey = channels <= 2;
      out[target] = row[source] as number;
      out[target + 1] = row[grey ? source : source + 1] as number;
      out[target + 2] = row[grey ? source : source + 2] as number;
      out[target + 3] = channels === 4 ? row[source + 3] as number : channels === 2 ? row[source + 1] as number : 255;
    }
    previous = row;
  }
  return { width, height, rgba: out };
}

function unfilter(filter: number, line: Uint8Array, above: Uint8Array, bpp: number): Uint8Array {
  const row = new Uint8Array(line.length);
  for (let i = 0; i < line.length; i++) {
    const a = i >= bpp ? row[i - bpp] as number : 0;
    const b = above[i] as number;
    const c = i >= bpp ? above[i - bpp] as number : 0;
    const x = line[i] as number;
    if (filter === 0) row[i] = x;
    else if (filter === 1) row[i] = (x + a) & 255;
    else if (filter === 2) row[i] = (x + b) & 255;
    else if (filter === 3) row[i] = (x + ((a + b) >> 1)) & 255;
    else row[i] = (x + paeth(a, b, c)) & 255;
  }
  return row;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Variance of the luminance and the number of distinct colours (quantised to 4 bits a channel). */
export function pixelStats(pixels: Pixels): { variance: number; colours: number } {
  let sum = 0, sumSq = 0;
  const colours = new Set<number>();
  const n = pixels.width * pixels.height;
  for (let i = 0; i < n; i++) {
    const r = pixels.rgba[i * 4] as number, g = pixels.rgba[i * 4 + 1] as number, b = pixels.rgba[i * 4 + 2] as number;
    const y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    sum += y;
    sumSq += y * y;
    colours.add(((r >> 4) << 8) | ((g >> 4) << 4) | (b >> 4));
  }
  const mean = sum / n;
  return { variance: sumSq / n - mean * mean, colours: colours.size };
}

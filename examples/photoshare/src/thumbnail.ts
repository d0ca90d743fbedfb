// A PNG thumbnail at most `size` pixels on its longer side: each output pixel is the mean
// of the source pixels it covers (a box filter). Pure: bytes in, bytes out.
import { PNG } from 'pngjs';

export function thumbnail(png: Buffer, size = 64): Buffer {
  const src = PNG.sync.read(png);
  const scale = Math.min(1, size / Math.max(src.width, src.height));
  const w = Math.max(1, Math.round(src.width * scale));
  const h = Math.max(1, Math.round(src.height * scale));
  const out = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor((y * src.height) / h);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * src.height) / h));
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor((x * src.width) / w);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * src.width) / w));
      const sum = new Float64Array(4);
      for (let sy = y0; sy < y1; sy++) {
        for (let sx = x0; sx < x1; sx++) {
          const i = (sy * src.width + sx) * 4;
          for (let c = 0; c < 4; c++) sum[c] = (sum[c] ?? 0) + (src.data[i + c] ?? 0);
        }
      }
      const n = (y1 - y0) * (x1 - x0);
      const o = (y * w + x) * 4;
      for (let c = 0; c < 4; c++) out.data[o + c] = Math.round((sum[c] ?? 0) / n);
    }
  }
  return PNG.sync.write(out);
}

/** A solid-colour PNG, for tests and the demo. */
export function solidPng(width: number, height: number, rgba: readonly number[]): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set(rgba, i * 4);
  return PNG.sync.write(png);
}

// srjs's seam-free tiling (src/srjs/evaluate/tiling.py, plan_spans), in input pixels.
// Every window has the same size, min(tile + 2*pad, length); the first starts at the edge, each
// later one keeps the pixels after where the previous stopped and the last is shifted back to
// end at the edge, so every kept pixel sees `pad` pixels of context (or the image edge) on each
// side. Span: {start, size, keepStart, keepStop}.
export function planSpans(length, tile, pad) {
  if (!(tile >= 1) || !(pad >= 0)) throw new Error(`tiles need tile >= 1 and pad >= 0 (got ${tile}, ${pad})`);
  const size = Math.min(tile + 2 * pad, length);
  if (size === length) return [{ start: 0, size: length, keepStart: 0, keepStop: length }];
  const spans = [];
  let kept = 0;
  while (kept < length) {
    const start = kept === 0 ? 0 : Math.min(kept - pad, length - size);
    const stop = start + size === length ? length : start + size - pad;
    spans.push({ start, size, keepStart: kept, keepStop: stop });
    kept = stop;
  }
  return spans;
}

export function planTiles(height, width, tile, pad) {
  const ys = planSpans(height, tile, pad);
  const xs = planSpans(width, tile, pad);
  return ys.flatMap((y) => xs.map((x) => ({ y, x })));
}

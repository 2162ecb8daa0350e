import type { AirtimeModel } from './model.js';

/**
 * The airtime of a link's frames as the layers above see them: a driver that adds `overhead`
 * bytes to every frame (an AX.25 header, a pad-count byte) costs frames by their size on air.
 */
export function withOverhead(model: AirtimeModel, overhead: number): AirtimeModel {
  if (overhead === 0) return model;
  return {
    kind: model.kind,
    maxBytes: model.maxBytes - overhead,
    airtimeMs: (bytes) => model.airtimeMs(bytes + overhead),
    maxBytesWithin: (limitMs) => {
      const n = model.maxBytesWithin(limitMs);
      return n < overhead ? -1 : n - overhead;
    },
  };
}

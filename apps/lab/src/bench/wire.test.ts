import { describe, expect, it } from "vitest";
import { wireRows } from "./wire.ts";

describe("wire rows", () => {
  const rows = wireRows();
  const row = (experts: number, capacity: number, dtype: "float32" | "float16") =>
    rows.find((r) => r.experts === experts && r.capacity === capacity && r.dtype === dtype);

  it("a page holding k = 2 of 8 experts of the cnn preset downloads at most 35% of the full float32 model", () => {
    const r = row(8, 2, "float32");
    expect(r?.downloadFraction).toBeLessThanOrEqual(0.35);
    // Frame header and names are on top of the 4 bytes per parameter.
    expect(r?.downloadBytes).toBeGreaterThan(4 * (3568 + 2 * 19850));
    expect(r?.fullModelBytes).toBe(4 * (3568 + 8 * 19850));
  });

  it("grows with k, halves in float16, and shrinks with E", () => {
    expect(row(8, 4, "float32")!.downloadBytes).toBeGreaterThan(row(8, 2, "float32")!.downloadBytes);
    expect(row(8, 2, "float16")!.downloadBytes).toBeLessThan(0.51 * row(8, 2, "float32")!.downloadBytes);
    expect(row(64, 2, "float32")!.downloadFraction).toBeLessThan(row(8, 2, "float32")!.downloadFraction);
    expect(rows.every((r) => r.uploadBytes === r.downloadBytes)).toBe(true);
  });
});

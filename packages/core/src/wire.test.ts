import { describe, expect, it } from "vitest";
import { createRng } from "./rng.ts";
import type { NamedTensor } from "./types.ts";
import { decodeTensors, encodeTensors, float16BitsToFloat32, float32ToFloat16Bits, manifestOf, type WireErrorCode } from "./wire.ts";

const t = (name: string, shape: number[], values: number[]): NamedTensor => ({ name, shape, data: Float32Array.from(values) });

function sample(): NamedTensor[] {
  const rng = createRng(11);
  const w = Array.from({ length: 24 }, () => rng.normal() * 3);
  return [t("dense/kernel", [4, 6], w), t("dense/bias", [6], [0, -0, 1e-40, -3.5, 1e30, 7]), t("scalar", [], [42]), t("empty", [0, 3], [])];
}

function codeOf(r: ReturnType<typeof decodeTensors>): WireErrorCode | "OK" {
  return r.ok ? "OK" : r.error.code;
}

/** Builds a frame from a raw header string and data bytes, to craft malformed inputs. */
function rawFrame(header: string, data: Uint8Array = new Uint8Array(0), pad = 0): Uint8Array {
  const headerLen = header.length;
  const start = Math.ceil((8 + headerLen) / 4) * 4;
  const f = new Uint8Array(start + data.length);
  f.set([0x46, 0x4d, 0x57, 0x31]);
  new DataView(f.buffer).setUint32(4, headerLen, true);
  for (let i = 0; i < headerLen; i++) f[8 + i] = header.charCodeAt(i);
  for (let i = 8 + headerLen; i < start; i++) f[i] = pad;
  f.set(data, start);
  return f;
}

describe("float16 conversion", () => {
  it("known bit patterns, round to nearest even, overflow to Infinity", () => {
    expect(float32ToFloat16Bits(1)).toBe(0x3c00);
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(0)).toBe(0);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(65519)).toBe(0x7bff);
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // tie rounds to even = Infinity
    expect(float32ToFloat16Bits(1e6)).toBe(0x7c00);
    expect(float32ToFloat16Bits(-Infinity)).toBe(0xfc00);
    expect(float32ToFloat16Bits(Number.NaN) & 0x7e00).toBe(0x7e00);
    expect(float32ToFloat16Bits(2 ** -24)).toBe(1); // smallest subnormal
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0); // tie between 0 and 1 -> even 0
    expect(float32ToFloat16Bits(3 * 2 ** -25)).toBe(2); // tie between 1 and 2 -> even 2
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even mantissa 0
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even mantissa 2
    expect(float32ToFloat16Bits(2 ** -14 - 2 ** -26)).toBe(0x0400); // rounds up out of subnormals
    expect(float16BitsToFloat32(0x3c00)).toBe(1);
    expect(float16BitsToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16BitsToFloat32(0x7bff)).toBe(65504);
    expect(float16BitsToFloat32(0xfc00)).toBe(-Infinity);
    expect(float16BitsToFloat32(0x7e00)).toBeNaN();
  });

  it("exhaustive: every finite half round-trips, and midpoints round to even", () => {
    let bad = 0;
    for (let h = 0; h < 0x10000; h++) {
      const v = float16BitsToFloat32(h);
      if (Number.isNaN(v)) continue;
      if (float32ToFloat16Bits(v) !== h) bad++;
    }
    for (let h = 0; h < 0x7bff; h++) {
      const lo = float16BitsToFloat32(h);
      const hi = float16BitsToFloat32(h + 1);
      const mid = (lo + hi) / 2; // exact in float32
      const even = h % 2 === 0 ? h : h + 1;
      if (float32ToFloat16Bits(mid) !== even) bad++;
      if (float32ToFloat16Bits(mid + (hi - lo) / 8) !== h + 1) bad++;
      if (float32ToFloat16Bits(mid - (hi - lo) / 8) !== h) bad++;
      if (float32ToFloat16Bits(-mid) !== (even | 0x8000)) bad++;
    }
    expect(bad).toBe(0);
  });
});

describe("encodeTensors / decodeTensors", () => {
  it("float32 round trip is exact (including -0, subnormals, scalars and empty tensors)", () => {
    const ts = sample();
    const r = decodeTensors(encodeTensors(ts), manifestOf(ts));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.map((x) => [x.name, x.shape])).toEqual(ts.map((x) => [x.name, x.shape]));
    r.value.forEach((x, i) => {
      expect(x.data).toBeInstanceOf(Float32Array);
      expect(Object.is(x.data[1], (ts[i] as NamedTensor).data[1])).toBe(true);
      expect(Array.from(x.data)).toEqual(Array.from((ts[i] as NamedTensor).data));
    });
    expect(Object.is(r.value[1]?.data[1], -0)).toBe(true);
  });

  it("header is 4-byte aligned and data starts on an aligned offset", () => {
    const frame = encodeTensors([t("a", [1], [1])]);
    const headerLen = new DataView(frame.buffer).getUint32(4, true);
    expect(String.fromCharCode(...frame.subarray(0, 4))).toBe("FMW1");
    expect((frame.length - 4) % 4).toBe(0);
    expect(frame.length).toBe(Math.ceil((8 + headerLen) / 4) * 4 + 4);
  });

  it("decodes from any byteOffset into fresh aligned arrays", () => {
    const ts = sample();
    const frame = encodeTensors(ts);
    for (const shift of [1, 2, 3, 5]) {
      const host = new Uint8Array(frame.length + shift + 3);
      host.set(frame, shift);
      const view = host.subarray(shift, shift + frame.length);
      const r = decodeTensors(view, manifestOf(ts));
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      expect(r.value[0]?.data.byteOffset).toBe(0);
      expect(r.value[0]?.data.buffer).not.toBe(host.buffer);
      expect(Array.from(r.value[0]?.data ?? [])).toEqual(Array.from(ts[0]?.data ?? []));
    }
  });

  it("float16 round trip within relative 1e-3 and half the size of data", () => {
    const rng = createRng(5);
    const values = Array.from({ length: 1000 }, () => rng.normal() * 10 ** (rng.int(8) - 4));
    const ts = [t("w", [10, 100], values)];
    const f16 = encodeTensors(ts, "float16");
    const f32 = encodeTensors(ts);
    expect(f32.length - f16.length).toBe(2000);
    const r = decodeTensors(f16, manifestOf(ts));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    let worst = 0;
    const d = r.value[0]?.data ?? new Float32Array();
    values.forEach((v, i) => {
      if (Math.abs(v) >= 2 ** -14) worst = Math.max(worst, Math.abs((d[i] as number) - v) / Math.abs(v));
      else worst = Math.max(worst, Math.abs((d[i] as number) - v) / 2 ** -14); // subnormals: absolute error
    });
    expect(worst).toBeLessThan(1e-3);
  });

  it("float16 clamps finite values beyond ±65504 but keeps Infinity and NaN (rejected on decode)", () => {
    const r = decodeTensors(encodeTensors([t("w", [3], [1e6, -7e4, 65519])], "float16"));
    expect(r.ok && Array.from(r.value[0]?.data ?? [])).toEqual([65504, -65504, 65504]);
    const inf = decodeTensors(encodeTensors([t("w", [2], [1, Infinity])], "float16"));
    expect(codeOf(inf)).toBe("NON_FINITE");
  });

  it("non-ASCII names travel as an ASCII header", () => {
    const ts = [t("gewicht_ü/日本/🙂", [1], [3])];
    const frame = encodeTensors(ts);
    const headerLen = new DataView(frame.buffer).getUint32(4, true);
    expect(frame.subarray(8, 8 + headerLen).every((b) => b < 0x80)).toBe(true);
    const r = decodeTensors(frame, manifestOf(ts));
    expect(r.ok && r.value[0]?.name).toBe("gewicht_ü/日本/🙂");
  });

  it("encode rejects inconsistent tensors", () => {
    expect(() => encodeTensors([t("a", [2, 2], [1, 2, 3])])).toThrow(RangeError);
    expect(() => encodeTensors([t("a", [-1], [])])).toThrow(RangeError);
    expect(() => encodeTensors([t("a", [1], [1]), t("a", [1], [2])])).toThrow(/duplicate/);
  });

  it("rejects name, order, count and shape mismatches against a manifest", () => {
    const ts = [t("a", [2, 3], [1, 2, 3, 4, 5, 6]), t("b", [2], [1, 2])];
    const frame = encodeTensors(ts);
    expect(
      codeOf(
        decodeTensors(frame, [
          { name: "a", shape: [2, 3] },
          { name: "c", shape: [2] },
        ]),
      ),
    ).toBe("NAME_MISMATCH");
    expect(
      codeOf(
        decodeTensors(frame, [
          { name: "b", shape: [2] },
          { name: "a", shape: [2, 3] },
        ]),
      ),
    ).toBe("NAME_MISMATCH");
    expect(codeOf(decodeTensors(frame, [{ name: "a", shape: [2, 3] }]))).toBe("NAME_MISMATCH");
    expect(
      codeOf(
        decodeTensors(frame, [
          { name: "a", shape: [3, 2] },
          { name: "b", shape: [2] },
        ]),
      ),
    ).toBe("SHAPE_MISMATCH");
    expect(
      codeOf(
        decodeTensors(frame, [
          { name: "a", shape: [6] },
          { name: "b", shape: [2] },
        ]),
      ),
    ).toBe("SHAPE_MISMATCH");
    expect(
      codeOf(
        decodeTensors(frame, [
          { name: "a", shape: [2, 3] },
          { name: "b", shape: [2, 1] },
        ]),
      ),
    ).toBe("SHAPE_MISMATCH");
    expect(codeOf(decodeTensors(frame, manifestOf(ts)))).toBe("OK");
  });

  it("rejects size mismatches: truncated or extended data", () => {
    const frame = encodeTensors([t("a", [4], [1, 2, 3, 4])]);
    expect(codeOf(decodeTensors(frame.subarray(0, frame.length - 4)))).toBe("SIZE_MISMATCH");
    expect(codeOf(decodeTensors(frame.subarray(0, frame.length - 1)))).toBe("SIZE_MISMATCH");
    const longer = new Uint8Array(frame.length + 4);
    longer.set(frame);
    expect(codeOf(decodeTensors(longer))).toBe("SIZE_MISMATCH");
    // An absurd (but valid-integer) shape is a size mismatch, decided before any allocation.
    expect(codeOf(decodeTensors(rawFrame('{"dtype":"float32","tensors":[{"name":"a","shape":[1000000,1000000]}]}')))).toBe("SIZE_MISMATCH");
  });

  it("rejects non-finite values, naming the tensor and index", () => {
    const r = decodeTensors(encodeTensors([t("ok", [1], [1]), t("bad", [3], [0, 1, Number.NaN])]));
    expect(codeOf(r)).toBe("NON_FINITE");
    expect(!r.ok && r.error.message).toMatch(/"bad".*index 2/);
    expect(codeOf(decodeTensors(encodeTensors([t("x", [1], [-Infinity])])))).toBe("NON_FINITE");
  });

  it("rejects frames over maxBytes", () => {
    const frame = encodeTensors(sample());
    expect(codeOf(decodeTensors(frame, undefined, { maxBytes: frame.length - 1 }))).toBe("TOO_LARGE");
    expect(codeOf(decodeTensors(frame, undefined, { maxBytes: frame.length }))).toBe("OK");
  });

  it("rejects garbage and malformed headers as BAD_FRAME", () => {
    const f32 = (n: number) => new Uint8Array(n * 4);
    const cases: Uint8Array[] = [
      new Uint8Array(0),
      new Uint8Array([0x46, 0x4d, 0x57]),
      Uint8Array.from("XXXX\0\0\0\0", (c) => c.charCodeAt(0)),
      (() => {
        const f = rawFrame("{}");
        new DataView(f.buffer).setUint32(4, 0xffffffff, true);
        return f;
      })(),
      rawFrame("not json"),
      rawFrame("[1,2]"),
      rawFrame("null"),
      rawFrame('{"dtype":"float64","tensors":[]}'),
      rawFrame('{"dtype":"float32"}'),
      rawFrame('{"dtype":"float32","tensors":[{"shape":[1]}]}', f32(1)),
      rawFrame('{"dtype":"float32","tensors":[{"name":"a"}]}', f32(1)),
      rawFrame('{"dtype":"float32","tensors":[{"name":"a","shape":[-1]}]}', f32(1)),
      rawFrame('{"dtype":"float32","tensors":[{"name":"a","shape":[1.5]}]}', f32(1)),
      rawFrame('{"dtype":"float32","tensors":[{"name":"a","shape":["1"]}]}', f32(1)),
      rawFrame('{"dtype":"float32","tensors":[{"name":"a","shape":[1e300]}]}', f32(1)),
      rawFrame('{"dtype":"float32","tensors":[{"name":"a","shape":[1]},{"name":"a","shape":[1]}]}', f32(2)),
      rawFrame('{"dtype":"float32","tensors":[]} ', new Uint8Array(0), 7), // non-zero padding
      rawFrame('{"dtype":"float32","tensors":[{"name":"\u00e9","shape":[1]}]}', f32(1)), // raw non-ASCII byte
    ];
    cases.forEach((frame, i) => expect(codeOf(decodeTensors(frame)), `case ${i}`).toBe("BAD_FRAME"));
    // A valid empty frame is fine.
    expect(codeOf(decodeTensors(rawFrame('{"dtype":"float16","tensors":[]}')))).toBe("OK");
  });

  it("fuzz: random byte flips and truncations never throw", () => {
    const rng = createRng(99);
    const base = encodeTensors(sample());
    const base16 = encodeTensors(sample().slice(0, 3), "float16");
    const manifest = manifestOf(sample());
    const codes = new Set<string>();
    for (let iter = 0; iter < 3000; iter++) {
      const src = iter % 2 === 0 ? base : base16;
      const f = src.slice(0, iter % 7 === 0 ? rng.int(src.length + 1) : src.length);
      const flips = 1 + rng.int(4);
      for (let k = 0; k < flips && f.length > 0; k++) {
        // Bias flips toward the prefix and header, where parsing happens.
        const pos = rng.next() < 0.6 ? rng.int(Math.min(f.length, 120)) : rng.int(f.length);
        f[pos] = rng.int(256);
      }
      const r = decodeTensors(f, iter % 3 === 0 ? manifest : undefined, { maxBytes: 10_000 });
      // The defensive catch-all must never be what answered.
      if (!r.ok) expect(r.error.message).not.toMatch(/undecodable/);
      codes.add(codeOf(r));
    }
    for (let iter = 0; iter < 300; iter++) {
      const junk = Uint8Array.from({ length: rng.int(64) }, () => rng.int(256));
      if (iter % 2 === 0) junk.set([0x46, 0x4d, 0x57, 0x31].slice(0, junk.length));
      codes.add(codeOf(decodeTensors(junk)));
    }
    expect(codes.has("BAD_FRAME")).toBe(true);
    expect(codes.has("SIZE_MISMATCH")).toBe(true);
    for (const c of codes) expect(["OK", "BAD_FRAME", "NAME_MISMATCH", "SHAPE_MISMATCH", "SIZE_MISMATCH", "NON_FINITE"]).toContain(c);
  });
});

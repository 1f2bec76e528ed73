/**
 * Named tensors in one binary frame, for weight downloads and uploads.
 *
 * Layout: "FMW1" magic | u32 LE header length H | H bytes of ASCII JSON header
 * {"dtype":"float32"|"float16","tensors":[{"name":..,"shape":[..]},..]} | zero padding to a multiple
 * of 4 bytes | each tensor's values in header order, little-endian float32 or IEEE float16, unpadded.
 * Non-ASCII characters in names travel as JSON \u escapes, so the header is always pure ASCII.
 *
 * Decoding treats the frame as untrusted (it comes from a browser volunteer): it never throws, and
 * returns a coded error for anything malformed, mismatched or non-finite.
 */
import { err, ok, type Result } from "./result.ts";
import type { NamedTensor, TensorManifest } from "./types.ts";

/** Element encoding on the wire. */
export type WireDType = "float32" | "float16";

/** Why a frame was rejected. */
export type WireErrorCode =
  "BAD_FRAME" | "NAME_MISMATCH" | "SHAPE_MISMATCH" | "SIZE_MISMATCH" | "NON_FINITE" | "TOO_LARGE" | "OUT_OF_BOUNDS";

/** A decode failure. */
export interface WireError {
  code: WireErrorCode;
  message: string;
}

/** Options of {@link decodeTensors}. */
export interface DecodeOptions {
  /** Reject frames longer than this many bytes (no limit when omitted). */
  maxBytes?: number;
  /** Reject a value with |v| above this (OUT_OF_BOUNDS), checked in the same pass as finiteness. */
  maxAbs?: number;
}

/** Largest finite float16 magnitude. */
export const FLOAT16_MAX = 65504;

const MAGIC = [0x46, 0x4d, 0x57, 0x31]; // "FMW1"
const PREFIX = 8;

// Scratch for reinterpreting a float32's bits; single-threaded, so sharing it is safe.
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * IEEE 754 binary16 bits of x (x is first rounded to float32, as the values come from Float32Arrays).
 * Rounds to nearest, ties to even; magnitudes that round past 65504 become Infinity, tiny ones
 * become subnormals or signed zero; NaN becomes a quiet NaN.
 */
export function float32ToFloat16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0] as number;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value in units of 2^-24 is the 24-bit significand shifted right by 14 - e.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, which is exactly right (up to Infinity).
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** The value of IEEE 754 binary16 bits h (low 16 bits used). */
export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let halfTable: Float32Array | undefined;
/** All 65536 half values, built on first float16 decode. */
function halfToFloatTable(): Float32Array {
  if (halfTable === undefined) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = float16BitsToFloat32(h);
  }
  return halfTable;
}

/** Names and shapes of the tensors, in order (copies of the shape arrays). */
export function manifestOf(tensors: readonly NamedTensor[]): TensorManifest {
  return tensors.map((t) => ({ name: t.name, shape: [...t.shape] }));
}

/**
 * Encodes tensors into one frame (default float32, exact). With float16, finite values beyond
 * ±65504 are clamped to ±65504 so a large-but-finite weight does not turn into Infinity and get the
 * whole upload rejected; NaN and ±Infinity are passed through (and then fail decoding as NON_FINITE).
 * @throws RangeError on a shape that is not a list of non-negative integers, a data length that does
 *   not match the shape, or duplicate names (encoding is on the trusted side).
 */
export function encodeTensors(tensors: readonly NamedTensor[], dtype: WireDType = "float32"): Uint8Array {
  const names = new Set<string>();
  let elements = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new RangeError(`wire: duplicate tensor name ${JSON.stringify(t.name)}`);
    names.add(t.name);
    const size = shapeSize(t.shape);
    if (size === undefined) throw new RangeError(`wire: tensor ${JSON.stringify(t.name)} has an invalid shape ${JSON.stringify(t.shape)}`);
    if (size !== t.data.length) {
      throw new RangeError(`wire: tensor ${JSON.stringify(t.name)} has ${t.data.length} values but shape ${JSON.stringify(t.shape)}`);
    }
    elements += size;
  }
  const header = asciiJson({ dtype, tensors: tensors.map((t) => ({ name: t.name, shape: t.shape })) });
  const dataStart = align4(PREFIX + header.length);
  const bytesPer = dtype === "float16" ? 2 : 4;
  const frame = new Uint8Array(dataStart + elements * bytesPer);
  frame.set(MAGIC, 0);
  const view = new DataView(frame.buffer);
  view.setUint32(4, header.length, true);
  for (let i = 0; i < header.length; i++) frame[PREFIX + i] = header.charCodeAt(i);
  let off = dataStart;
  for (const t of tensors) {
    const d = t.data;
    if (dtype === "float32" && LITTLE_ENDIAN) {
      frame.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), off);
      off += d.byteLength;
    } else if (dtype === "float32") {
      for (let j = 0; j < d.length; j++, off += 4) view.setFloat32(off, d[j] as number, true);
    } else {
      for (let j = 0; j < d.length; j++, off += 2) {
        let v = d[j] as number;
        if (v > FLOAT16_MAX && v !== Number.POSITIVE_INFINITY) v = FLOAT16_MAX;
        else if (v < -FLOAT16_MAX && v !== Number.NEGATIVE_INFINITY) v = -FLOAT16_MAX;
        view.setUint16(off, float32ToFloat16Bits(v), true);
      }
    }
  }
  return frame;
}

/**
 * Decodes a frame into fresh, aligned Float32Arrays (the input may sit at any byteOffset and is not
 * retained). Never throws. Errors: TOO_LARGE (frame > maxBytes), BAD_FRAME (magic, lengths, header
 * JSON, dtype, names, shapes, padding), NAME_MISMATCH / SHAPE_MISMATCH (against `manifest`: same
 * names in the same order, identical shapes), SIZE_MISMATCH (data bytes differ from what the header
 * declares), NON_FINITE (names the tensor and the flat index).
 */
export function decodeTensors(frame: Uint8Array, manifest?: TensorManifest, opts: DecodeOptions = {}): Result<NamedTensor[], WireError> {
  try {
    return decodeUnsafe(frame, manifest, opts);
  } catch (e) {
    // Defensive: every path above is meant to return; this only guards against engine surprises.
    return err({ code: "BAD_FRAME", message: `wire: undecodable frame (${e instanceof Error ? e.message : String(e)})` });
  }
}

function decodeUnsafe(frame: Uint8Array, manifest: TensorManifest | undefined, opts: DecodeOptions): Result<NamedTensor[], WireError> {
  const fail = (code: WireErrorCode, message: string) => err({ code, message: `wire: ${message}` });
  if (opts.maxBytes !== undefined && frame.length > opts.maxBytes) {
    return fail("TOO_LARGE", `frame of ${frame.length} bytes exceeds the ${opts.maxBytes}-byte limit`);
  }
  if (frame.length < PREFIX) return fail("BAD_FRAME", `frame of ${frame.length} bytes is shorter than the ${PREFIX}-byte prefix`);
  for (let i = 0; i < MAGIC.length; i++) if (frame[i] !== MAGIC[i]) return fail("BAD_FRAME", "bad magic (expected FMW1)");
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const headerLen = view.getUint32(4, true);
  if (headerLen > frame.length - PREFIX) return fail("BAD_FRAME", `header length ${headerLen} runs past the end of the frame`);
  const dataStart = align4(PREFIX + headerLen);
  if (dataStart > frame.length) return fail("BAD_FRAME", "frame ends inside the header padding");
  for (let i = PREFIX + headerLen; i < dataStart; i++) if (frame[i] !== 0) return fail("BAD_FRAME", "non-zero header padding");

  let text = "";
  for (let i = PREFIX; i < PREFIX + headerLen; i++) {
    const b = frame[i] as number;
    if (b >= 0x80) return fail("BAD_FRAME", "header is not ASCII");
    text += String.fromCharCode(b);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail("BAD_FRAME", "header is not valid JSON");
  }
  const header = readHeader(parsed);
  if (typeof header === "string") return fail("BAD_FRAME", header);

  if (manifest !== undefined) {
    if (manifest.length !== header.tensors.length) {
      return fail("NAME_MISMATCH", `frame has ${header.tensors.length} tensors, expected ${manifest.length}`);
    }
    for (let i = 0; i < manifest.length; i++) {
      const want = manifest[i] as TensorManifest[number];
      const got = header.tensors[i] as HeaderTensor;
      if (got.name !== want.name) {
        return fail("NAME_MISMATCH", `tensor ${i} is ${JSON.stringify(got.name)}, expected ${JSON.stringify(want.name)}`);
      }
      if (got.shape.length !== want.shape.length || got.shape.some((d, k) => d !== want.shape[k])) {
        return fail(
          "SHAPE_MISMATCH",
          `tensor ${JSON.stringify(got.name)} has shape [${got.shape.join(",")}], expected [${want.shape.join(",")}]`,
        );
      }
    }
  }

  const bytesPer = header.dtype === "float16" ? 2 : 4;
  const available = frame.length - dataStart;
  let declared = 0;
  for (const t of header.tensors) {
    declared += t.size * bytesPer;
    // Stop early so an absurd shape never drives an allocation.
    if (declared > available) break;
  }
  if (declared !== available) {
    return fail(
      "SIZE_MISMATCH",
      `header declares ${declared > available ? "more than " : ""}${declared} data bytes, frame has ${available}`,
    );
  }

  const out: NamedTensor[] = [];
  let off = dataStart;
  const table = header.dtype === "float16" ? halfToFloatTable() : undefined;
  for (const t of header.tensors) {
    const data = new Float32Array(t.size);
    if (table !== undefined) {
      for (let j = 0; j < t.size; j++, off += 2) data[j] = table[view.getUint16(off, true)] as number;
    } else if (LITTLE_ENDIAN) {
      // Byte copy into the fresh (aligned) buffer: works for any input byteOffset.
      new Uint8Array(data.buffer).set(frame.subarray(off, off + t.size * 4));
      off += t.size * 4;
    } else {
      for (let j = 0; j < t.size; j++, off += 4) data[j] = view.getFloat32(off, true);
    }
    const maxAbs = opts.maxAbs ?? Infinity;
    const j = firstOutside(data, Math.min(maxAbs, FLOAT32_MAX));
    if (j >= 0) {
      const v = data[j] as number;
      if (!Number.isFinite(v)) return fail("NON_FINITE", `tensor ${JSON.stringify(t.name)} has ${v} at index ${j}`);
      return fail("OUT_OF_BOUNDS", `tensor ${JSON.stringify(t.name)}: value ${v} at index ${j} is beyond ±${maxAbs}`);
    }
    out.push({ name: t.name, shape: t.shape, data });
  }
  return ok(out);
}

const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Index of the first value outside [-lim, lim] (NaN included), or -1. One comparison pair per value in a
 * small function V8 optimizes on its own: inline in decodeUnsafe the same check ran about 6x slower.
 */
function firstOutside(a: Float32Array, lim: number): number {
  for (let j = 0; j < a.length; j++) {
    const v = a[j] as number;
    if (!(v <= lim && v >= -lim)) return j;
  }
  return -1;
}

interface HeaderTensor {
  name: string;
  shape: number[];
  size: number;
}

/** Validates the parsed header; returns a reason string when it is malformed. */
function readHeader(h: unknown): { dtype: WireDType; tensors: HeaderTensor[] } | string {
  if (typeof h !== "object" || h === null || Array.isArray(h)) return "header is not an object";
  const { dtype, tensors } = h as Record<string, unknown>;
  if (dtype !== "float32" && dtype !== "float16") return `unknown dtype ${String(dtype)}`;
  if (!Array.isArray(tensors)) return "header has no tensor list";
  const out: HeaderTensor[] = [];
  const names = new Set<string>();
  for (const [i, entry] of (tensors as unknown[]).entries()) {
    if (typeof entry !== "object" || entry === null) return `tensor entry ${i} is not an object`;
    const { name, shape } = entry as Record<string, unknown>;
    if (typeof name !== "string") return `tensor entry ${i} has no name`;
    if (names.has(name)) return `duplicate tensor name ${JSON.stringify(name)}`;
    names.add(name);
    if (!Array.isArray(shape)) return `tensor ${JSON.stringify(name)} has no shape`;
    const dims = shape as unknown[];
    if (!dims.every((d): d is number => typeof d === "number")) return `tensor ${JSON.stringify(name)} has a non-numeric dimension`;
    const size = shapeSize(dims);
    if (size === undefined) return `tensor ${JSON.stringify(name)} has an invalid shape [${dims.join(",")}]`;
    out.push({ name, shape: [...dims], size });
  }
  return { dtype, tensors: out };
}

/** Element count of a shape, or undefined if a dimension is not a non-negative integer or the count is not safe. */
function shapeSize(shape: readonly number[]): number | undefined {
  let size = 1;
  for (const d of shape) {
    if (!(Number.isSafeInteger(d) && d >= 0)) return undefined;
    size *= d;
  }
  return Number.isSafeInteger(size) ? size : undefined;
}

function align4(n: number): number {
  // Arithmetic, not bit masks: a hostile header length can exceed 2^31.
  return Math.ceil(n / 4) * 4;
}

/** JSON with every non-ASCII UTF-16 unit escaped as \uXXXX (JSON.parse restores the string). */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

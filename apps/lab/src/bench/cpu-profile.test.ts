import { describe, expect, it } from "vitest";
import { cpuBreakdown, parseProcStatCpuMs, type CpuProfile } from "./cpu-profile.ts";

const frame = (functionName: string, url: string, lineNumber = 0) => ({ functionName, url, lineNumber });

describe("cpuBreakdown", () => {
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame("(root)", "") },
      { id: 2, callFrame: frame("(idle)", "") },
      { id: 3, callFrame: frame("encode", "file:///r/node_modules/socket.io-parser/build/cjs/index.js", 9) },
      { id: 4, callFrame: frame("decodeFrame", "file:///r/packages/core/src/wire.ts", 41) },
      { id: 5, callFrame: frame("(garbage collector)", "") },
      { id: 6, callFrame: frame("parse", "file:///r/node_modules/zod/v4/core/parse.js") },
    ],
    startTime: 1_000,
    endTime: 9_000,
    // Sample times 2000, 3000, ..., 8000 (1 ms apart).
    samples: [3, 4, 4, 2, 5, 6, 3],
    timeDeltas: [1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000],
  };

  it("sums self time per part of the stack and leaves idle out", () => {
    const b = cpuBreakdown(profile);
    expect(b.busyMs).toBe(6);
    expect(b.parts[0]).toEqual({ part: "socket.io / engine.io / ws", ms: 2, share: 2 / 6 });
    expect(b.parts.find((p) => p.part === "wire codec (core/wire)")?.ms).toBe(2);
    expect(b.parts.find((p) => p.part === "garbage collection")?.ms).toBe(1);
    expect(b.parts.find((p) => p.part === "validation (zod)")?.ms).toBe(1);
    expect(b.top[0]?.part).toMatch(
      /^(encode \(node_modules\/socket\.io-parser\/build\/cjs\/index\.js:10\)|decodeFrame \(packages\/core\/src\/wire\.ts:42\))$/,
    );
  });

  it("keeps only the samples inside the window", () => {
    const b = cpuBreakdown(profile, 3_500, 6_500); // samples at 4000, 5000 (idle), 6000
    expect(b.busyMs).toBe(2);
    expect(b.parts.map((p) => p.part).sort()).toEqual(["garbage collection", "wire codec (core/wire)"]);
  });
});

describe("parseProcStatCpuMs", () => {
  it("reads utime + stime past a command name with spaces and parentheses", () => {
    const stat = "4242 (node (x) y) S 1 2 3 0 -1 4194304 10 0 0 0 250 50 0 0 20 0 11 0 100 1000 10";
    expect(parseProcStatCpuMs(stat, 100)).toBe(3000);
  });
  it("is null for text it cannot read", () => {
    expect(parseProcStatCpuMs("", 100)).toBeNull();
  });
});

import { describe, expect, it } from "vitest";
import {
  cell,
  formatBytes,
  formatMarkdownTable,
  formatTable,
  median,
  parseProcStatus,
  quantile,
  ratio,
  relativeGap,
  sig,
  slope,
} from "./stats.ts";

describe("bench stats", () => {
  it("median handles odd, even and empty inputs without mutating", () => {
    const xs = [5, 1, 3];
    expect(median(xs)).toBe(3);
    expect(xs).toEqual([5, 1, 3]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it("quantile interpolates and validates q", () => {
    expect(quantile([1, 2, 3, 4, 5], 0)).toBe(1);
    expect(quantile([1, 2, 3, 4, 5], 1)).toBe(5);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(() => quantile([1], 2)).toThrow(RangeError);
  });

  it("ratio refuses division by zero and non-finite values", () => {
    expect(ratio(6, 3)).toBe(2);
    expect(ratio(1, 0)).toBeNull();
    expect(ratio(Number.NaN, 1)).toBeNull();
  });

  it("sig and relativeGap", () => {
    expect(sig(123456, 3)).toBe(123000);
    expect(sig(0.00012345, 2)).toBe(0.00012);
    expect(relativeGap(100, 100)).toBe(0);
    expect(relativeGap(100, 99)).toBeCloseTo(0.01);
    expect(relativeGap(0.5, 0.25)).toBeCloseTo(0.25);
  });

  it("slope fits a line", () => {
    expect(
      slope([
        { x: 0, y: 1 },
        { x: 1, y: 3 },
        { x: 2, y: 5 },
      ]),
    ).toBeCloseTo(2);
    expect(slope([{ x: 1, y: 1 }])).toBeNaN();
    expect(
      slope([
        { x: 1, y: 1 },
        { x: 1, y: 2 },
      ]),
    ).toBeNaN();
  });

  it("formats bytes and cells", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.50 KiB");
    expect(formatBytes(3 * 1024 * 1024)).toBe("3.00 MiB");
    expect(cell(null)).toBe("-");
    expect(cell(2)).toBe("2");
    expect(cell(0.123456)).toBe("0.123");
  });

  it("formats tables", () => {
    const t = formatTable(
      ["a", "bb"],
      [
        [1, "x"],
        [22, null],
      ],
    );
    expect(t.split("\n")).toEqual(["a   bb", "--  --", "1   x", "22  -"]);
    expect(formatMarkdownTable(["a"], [[1]])).toBe("| a |\n| --- |\n| 1 |");
  });

  it("parses /proc/<pid>/status", () => {
    const s = parseProcStatus("Name:\tnode\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n");
    expect(s).toEqual({ hwmBytes: 2048 * 1024, rssBytes: 1024 * 1024 });
    expect(parseProcStatus("")).toEqual({ hwmBytes: null, rssBytes: null });
  });
});

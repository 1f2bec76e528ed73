import { describe, expect, it } from "vitest";
import { computeBounds, updateDeficit } from "./bounds.ts";
import { assign } from "./index.ts";
import { AssignmentError } from "./types.ts";
import type { AssignmentErrorCode, AssignmentProblem } from "./types.ts";

describe("computeBounds", () => {
  it("gives exact fair loads when F is divisible by E", () => {
    expect(computeBounds([2, 2, 2, 2, 2, 2], 4)).toEqual({ lower: [3, 3, 3, 3], upper: [3, 3, 3, 3] });
  });

  it("hands the spare slots to the largest deficits, ties to the lower id", () => {
    // F = 10, E = 4: base 2, two spares.
    expect(computeBounds([3, 3, 2, 2], 4, { deficit: [0, 1, 0, 1] })).toEqual({ lower: [2, 3, 2, 3], upper: [2, 3, 2, 3] });
    expect(computeBounds([3, 3, 2, 2], 4)).toEqual({ lower: [3, 3, 2, 2], upper: [3, 3, 2, 2] });
    expect(computeBounds([3, 3, 2, 2], 4, { deficit: [0, 0.5, 0.5, 0.2] })).toEqual({ lower: [2, 3, 3, 2], upper: [2, 3, 3, 2] });
  });

  it("widens with slack, guards rounding and clamps U to the client count", () => {
    // F = 40 over 4 experts: n = 10; (1 + 0.1) * 10 = 11.000000000000002 must still give 11.
    expect(computeBounds(new Array<number>(20).fill(2), 4, { slack: 0.1 })).toEqual({ lower: [9, 9, 9, 9], upper: [11, 11, 11, 11] });
    expect(computeBounds([2, 2, 2], 3, { slack: 5 })).toEqual({ lower: [0, 0, 0], upper: [3, 3, 3] });
  });

  it("rejects bad input with typed errors", () => {
    const code = (f: () => unknown): AssignmentErrorCode | undefined => {
      try {
        f();
      } catch (e) {
        if (e instanceof AssignmentError) return e.code;
        throw e;
      }
      return undefined;
    };
    expect(code(() => computeBounds([1, 2], 0))).toBe("INVALID_INPUT");
    expect(code(() => computeBounds([], 3))).toBe("INVALID_INPUT");
    expect(code(() => computeBounds([1, 1.5], 3))).toBe("INVALID_INPUT");
    expect(code(() => computeBounds([1, 4], 3))).toBe("INFEASIBLE");
    expect(code(() => computeBounds([1, 2], 3, { slack: -1 }))).toBe("INVALID_INPUT");
    expect(code(() => computeBounds([1, 2], 3, { deficit: [0, 0] }))).toBe("INVALID_INPUT");
  });
});

describe("updateDeficit", () => {
  it("adds the fair share and subtracts the load", () => {
    expect(updateDeficit([0, 1, -1], [2, 1, 1], 4)).toEqual([4 / 3 - 2, 1 + 4 / 3 - 1, -1 + 4 / 3 - 1]);
    expect(() => updateDeficit([0], [1, 2], 3)).toThrowError(AssignmentError);
  });
});

describe("input validation", () => {
  const good: AssignmentProblem = { clients: 2, experts: 3, fitness: [1, 2, 3, 4, 5, 6], capacity: [1, 2] };
  const cases: [string, AssignmentProblem, AssignmentErrorCode][] = [
    ["zero clients", { ...good, clients: 0 }, "INVALID_INPUT"],
    ["fractional experts", { ...good, experts: 2.5 }, "INVALID_INPUT"],
    ["short fitness", { ...good, fitness: [1, 2, 3] }, "INVALID_INPUT"],
    ["NaN fitness", { ...good, fitness: [1, 2, NaN, 4, 5, 6] }, "INVALID_INPUT"],
    ["infinite fitness", { ...good, fitness: [1, 2, 3, 4, Infinity, 6] }, "INVALID_INPUT"],
    ["short capacity", { ...good, capacity: [1] }, "INVALID_INPUT"],
    ["zero capacity", { ...good, capacity: [0, 1] }, "INVALID_INPUT"],
    ["capacity above E", { ...good, capacity: [1, 4] }, "INFEASIBLE"],
    ["negative slack", { ...good, slack: -0.1 }, "INVALID_INPUT"],
    ["NaN slack", { ...good, slack: NaN }, "INVALID_INPUT"],
    ["deficit length", { ...good, deficit: [0, 0] }, "INVALID_INPUT"],
    ["deficit NaN", { ...good, deficit: [0, NaN, 0] }, "INVALID_INPUT"],
  ];
  for (const [name, p, code] of cases) {
    it(`${name} -> ${code} for every strategy`, () => {
      for (const s of ["flex", "greedy", "roundrobin"] as const) {
        let err: unknown;
        try {
          assign(p, s);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(AssignmentError);
        expect((err as AssignmentError).code).toBe(code);
        expect((err as AssignmentError).message).not.toContain("\n");
      }
    });
  }

  it("names the client whose capacity exceeds E", () => {
    expect(() => assign({ ...good, capacity: [1, 4] }, "flex")).toThrowError(/client 1/);
  });
});

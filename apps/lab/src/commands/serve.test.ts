import { DEFAULT_EPOCHS, resolveConfig } from "@flexmoe/coordinator";
import { describe, expect, it } from "vitest";
import { parseKnob, UsageError } from "../options.ts";
import { serveConfig } from "./serve.ts";

describe("flexmoe serve --feedback", () => {
  it("reaches the training config every round:started carries (default pre)", () => {
    expect(resolveConfig(serveConfig([]).config).training.feedback).toBe("pre");
    for (const mode of ["pre", "during", "post"] as const)
      expect(resolveConfig(serveConfig(["--feedback", mode]).config).training).toMatchObject({ feedback: mode, epochs: DEFAULT_EPOCHS });
  });

  it("is a usage error for anything else", () => {
    expect(parseKnob("feedback", "during")).toBe("during");
    expect(() => serveConfig(["--feedback", "after"])).toThrow(UsageError);
    expect(() => resolveConfig({ training: { feedback: "after" as "pre" } })).toThrow(/feedback must be one of pre, during, post/);
  });
});

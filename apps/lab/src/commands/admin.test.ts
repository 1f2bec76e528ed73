/** `flexmoe admin` against a real coordinator (createApp on loopback, the admin endpoint with a token). */
import { afterEach, describe, expect, it, vi } from "vitest";
import { AppFixture } from "@flexmoe/testkit";
import { runAdmin } from "./admin.ts";

const TOKEN = "admin-test-token-0123456789";

const fixture = new AppFixture();
afterEach(async () => {
  await fixture.closeAll();
  vi.restoreAllMocks();
});

const start = () => fixture.start({ config: { gatherMs: 20, shards: 2 }, deps: { adminToken: TOKEN }, samples: 100, seed: 5 });

describe("flexmoe admin (CLI)", () => {
  it("pauses and resumes with the token, exits 1 with UNAUTHORIZED without it, 2 on bad usage", async () => {
    const { app, url } = await start();
    const out = vi.spyOn(console, "log").mockImplementation(() => {});
    const err = vi.spyOn(console, "error").mockImplementation(() => {});
    expect(await runAdmin(["pause", "--url", url, "--token", "nope"])).toBe(1);
    expect(err.mock.calls.flat().join(" ")).toContain("UNAUTHORIZED");
    expect(app.federation.phase).toBe("waiting");
    expect(await runAdmin(["pause", "--url", url, "--token", TOKEN])).toBe(0);
    expect(app.federation.phase).toBe("paused");
    expect(JSON.parse(String(out.mock.calls.at(-1)?.[0]))).toMatchObject({ phase: "paused" });
    expect(await runAdmin(["start", "--url", url, "--token", TOKEN])).toBe(0);
    expect(app.federation.phase).toBe("waiting");
    expect(await runAdmin(["set-rounds", "5", "--url", url, "--token", TOKEN])).toBe(0);
    expect(app.federation.roundLimit).toBe(5);
    expect(await runAdmin(["set-strategy", "best", "--url", url, "--token", TOKEN])).toBe(2);
    expect(await runAdmin(["start", "--url", "http://127.0.0.1:1", "--token", TOKEN])).toBe(2);
  });
});

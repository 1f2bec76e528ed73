/**
 * One live socket per client, rotated tokens and pruning, against the real app over real sockets:
 * the reconnect race (a superseded socket's late drop must not take a rejoined client offline),
 * a copied token (detected, the identity revoked), an answer lost in transit (the previous token is
 * accepted once), and join churn (offline clients forgotten, tokens and Q rows with them).
 */
import { afterEach, expect, it, vi } from "vitest";
import { AppFixture, ManualClock } from "@flexmoe/testkit";

const fixture = new AppFixture();
afterEach(() => fixture.closeAll());

const wait = { timeout: 8_000, interval: 10 };

it("a rejoin on a new socket supersedes the old one; the old socket's drop does not count; rounds go on", async () => {
  const { app, client } = await fixture.start({ config: { minClients: 2 } });
  const phone = client({ capacity: 2, autoSubmit: false });
  const other = client({ capacity: 2, delayMs: 10 });
  await Promise.all([phone.join(), other.join()]);
  await vi.waitFor(() => expect(phone.rounds).toHaveLength(1), wait);
  const id = phone.info!.clientId;

  // The phone's network path silently changed: the page rejoins on a new socket with its token.
  const again = client({ capacity: 2, delayMs: 10 });
  const info = await again.join(phone.info!.token);
  expect(info.clientId).toBe(id);
  expect(info.token).not.toBe(phone.info!.token); // rotated
  // The old socket is told why and closed by the server; its drop changes nothing.
  await vi.waitFor(() => expect(phone.ended).toEqual([expect.objectContaining({ reason: "superseded" })]), wait);
  await phone.disconnected();
  expect(app.federation.client(id)).toMatchObject({ online: true, ready: true });
  // An event on the superseded connection would be refused (it is closed; the federation checks too).
  expect(app.federation.setReady(id, false, phone.socket.id ?? "old-socket")).toBe(false);

  // The open round still counts the phone as a participant: the new socket answers it.
  expect(await again.submit(phone.rounds[0]!)).toMatchObject({ ok: true });
  await vi.waitFor(() => expect(app.federation.round).toBeGreaterThanOrEqual(2), wait);
  expect(app.federation.snapshot.history[1]!.assigned[id]).toBeDefined();
});

it("a copied token is detected: when both holders use it, the identity is revoked (TOKEN_REUSED)", async () => {
  const { app, url, client } = await fixture.start({ config: { minClients: 3 } });
  const victim = client({ capacity: 2, autoSubmit: false });
  await victim.join();
  const copied = victim.info!.token;
  const id = victim.info!.clientId;

  // The thief joins with the copied token and uses the new one (declares ready): the victim is superseded.
  const thief = client({ capacity: 2, autoSubmit: false });
  await thief.join(copied);
  await vi.waitFor(() => expect(victim.ended).toHaveLength(1), wait);
  // The victim's page comes back with the token it holds: the replaced one, whose successor is in use.
  const back = client({ capacity: 2, autoSubmit: false });
  const res = await back.joinOnly(copied);
  expect(res).toMatchObject({ ok: false, error: { code: "TOKEN_REUSED" } });
  await vi.waitFor(() => expect(thief.ended).toEqual([expect.objectContaining({ reason: "revoked" })]), wait);
  // Neither token opens the identity any more; the victim joins afresh under a new id.
  expect(await client({ capacity: 2 }).joinOnly(thief.info!.token)).toMatchObject({ ok: false, error: { code: "UNKNOWN_TOKEN" } });
  expect(await client({ capacity: 2 }).joinOnly(copied)).toMatchObject({ ok: false, error: { code: "UNKNOWN_TOKEN" } });
  expect(app.federation.client(id)).toMatchObject({ online: false, ready: false });
  const fresh = await back.joinOnly(undefined);
  expect(fresh.ok && fresh.value.clientId).not.toBe(id);
  const status = (await (await fetch(`${url}/api/status`)).json()) as { rejected: { byCode: Record<string, number> } };
  expect(status.rejected.byCode["TOKEN_REUSED"]).toBe(1);
});

it("an answer lost in transit: the previous token is accepted once while its successor is unused", async () => {
  const { client } = await fixture.start();
  const a = client({ capacity: 2, autoSubmit: false });
  const first = await a.join();
  // A rejoin whose answer (with the rotated token) never reaches the page: nothing uses the new token.
  const lost = client({ capacity: 2, autoSubmit: false });
  const rotated = await lost.joinOnly(first.token);
  expect(rotated.ok).toBe(true);
  lost.close();
  const again = client({ capacity: 2, autoSubmit: false });
  const info = await again.join(first.token);
  expect(info.clientId).toBe(first.clientId);
  // The unused successor is gone: only the newest token works.
  expect(await client({ capacity: 2 }).joinOnly(rotated.ok ? rotated.value.token : "")).toMatchObject({
    ok: false,
    error: { code: "UNKNOWN_TOKEN" },
  });
});

it("join churn: offline clients are pruned after --prune-after (registry, tokens, Q rows); live ones stay", async () => {
  const clock = new ManualClock();
  const { app, client } = await fixture.start({ config: { pruneAfterSec: 600, minClients: 50 }, deps: { clock } });
  const stay = client({ capacity: 2, autoSubmit: false });
  await stay.join();
  const junk = Array.from({ length: 20 }, () => client({ capacity: 2, autoSubmit: false }));
  const infos = await Promise.all(junk.map((c) => c.join()));
  junk.forEach((c) => c.close());
  await vi.waitFor(() => expect(app.federation.clientList().filter((c) => c.online)).toHaveLength(1), wait);
  expect(app.federation.clientList()).toHaveLength(21);

  clock.advance(601_000);
  await stay.request("client:ready", { ready: true }); // any state change runs the (rate-limited) prune
  expect(app.federation.clientList().map((c) => c.id)).toEqual([stay.info!.clientId]);
  expect(await client({ capacity: 2 }).joinOnly(infos[0]!.token)).toMatchObject({ ok: false, error: { code: "UNKNOWN_TOKEN" } });
  for (const i of infos) expect(app.federation.snapshot.fitness.has(i.clientId)).toBe(false);
});

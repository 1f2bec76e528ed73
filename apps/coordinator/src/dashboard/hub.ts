/**
 * Namespace `/dashboard`: every dashboard gets the full state on connect and again after each
 * change. Changes are coalesced (one snapshot per `COALESCE_MS`), so a burst of joins or a round's
 * updates cost one push. The hub owns its one timer and cancels it on close. A snapshot that cannot
 * be built is logged and skipped: a dashboard connection must never take the coordinator down.
 */
import type { DashboardServerToClientEvents } from "@flexmoe/core";
import type { Namespace, Server } from "socket.io";
import type { Clock, TimerHandle } from "../clock.ts";
import type { Federation } from "../federation.ts";
import type { Logger } from "../logger.ts";
import { dashboardState } from "./state.ts";

export const COALESCE_MS = 100;

export type DashboardNamespace = Namespace<Record<string, never>, DashboardServerToClientEvents>;

export class DashboardHub {
  private readonly ns: DashboardNamespace;
  private pending: TimerHandle | null = null;

  constructor(
    io: Server,
    private readonly federation: Federation,
    private readonly clock: Clock,
    private readonly joinUrls: () => readonly string[],
    private readonly log?: Logger,
  ) {
    this.ns = io.of("/dashboard") as unknown as DashboardNamespace;
    this.ns.on("connection", (socket) => {
      const s = this.safeState();
      if (s) socket.emit("dashboard:state", s);
    });
  }

  state() {
    return dashboardState(this.federation, this.joinUrls());
  }

  private safeState(): ReturnType<DashboardHub["state"]> | null {
    try {
      return this.state();
    } catch (e) {
      this.log?.error({ err: e }, "dashboard state not built");
      return null;
    }
  }

  /** Something changed: push one snapshot soon. */
  changed(): void {
    if (this.pending) return;
    this.pending = this.clock.timeout(COALESCE_MS, () => {
      this.pending = null;
      const s = this.safeState();
      if (s) this.ns.emit("dashboard:state", s);
    });
  }

  close(): void {
    this.pending?.cancel();
    this.pending = null;
  }
}

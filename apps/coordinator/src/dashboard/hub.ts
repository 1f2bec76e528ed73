/**
 * Namespace `/dashboard`: every dashboard gets the full state on connect and again after each
 * change. Changes are coalesced (one snapshot per `COALESCE_MS`), so a burst of joins or a round's
 * updates cost one push. The hub owns its one timer and cancels it on close.
 */
import type { DashboardServerToClientEvents } from "@flexmoe/core";
import type { Namespace, Server } from "socket.io";
import type { Clock, TimerHandle } from "../clock.ts";
import type { Federation } from "../federation.ts";
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
  ) {
    this.ns = io.of("/dashboard") as unknown as DashboardNamespace;
    this.ns.on("connection", (socket) => socket.emit("dashboard:state", this.state()));
  }

  state() {
    return dashboardState(this.federation, this.joinUrls());
  }

  /** Something changed: push one snapshot soon. */
  changed(): void {
    if (this.pending) return;
    this.pending = this.clock.timeout(COALESCE_MS, () => {
      this.pending = null;
      this.ns.emit("dashboard:state", this.state());
    });
  }

  close(): void {
    this.pending?.cancel();
    this.pending = null;
  }
}

/**
 * `POST /api/admin`: the dashboard's and `flexmoe admin`'s controls. The token from start-up
 * travels as `Authorization: Bearer <token>`; the body is core's `adminCommandSchema`. The answer
 * is always an `AckResult` (401 UNAUTHORIZED, 400 INVALID_PAYLOAD, 200 ok).
 */
import { timingSafeEqual } from "node:crypto";
import { adminCommandSchema, ErrorCode, protocolError, type AckResult, type AdminCommand } from "@flexmoe/core";
import type { Request, Response } from "express";
import type { Federation } from "../federation.ts";
import type { Logger } from "../logger.ts";
import { issueText } from "./client.handlers.ts";

export interface AdminStatus {
  runId: string;
  phase: string;
  round: number;
  rounds: number;
  strategy: string;
}

function tokenMatches(header: string | undefined, token: string | undefined): boolean {
  if (!token || !header?.startsWith("Bearer ")) return false;
  const a = Buffer.from(header.slice("Bearer ".length).trim());
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function applyAdminCommand(federation: Federation, cmd: AdminCommand): AdminStatus {
  switch (cmd.action) {
    case "start":
      federation.pause(false);
      break;
    case "pause":
      federation.pause(true);
      break;
    case "reset":
      federation.reset();
      break;
    case "set-strategy":
      federation.setStrategy(cmd.value);
      break;
    case "set-rounds":
      federation.setRounds(cmd.value);
      break;
  }
  return {
    runId: federation.snapshot.runId,
    phase: federation.phase,
    round: federation.round,
    rounds: federation.roundLimit,
    strategy: federation.strategy,
  };
}

export function createAdminHandler(deps: { federation: Federation; adminToken: string | undefined; log: Logger; changed: () => void }) {
  const { federation, adminToken, log, changed } = deps;
  return (req: Request, res: Response): void => {
    let result: AckResult<AdminStatus>;
    let status = 200;
    if (!tokenMatches(req.get("authorization"), adminToken)) {
      status = 401;
      result = protocolError(ErrorCode.UNAUTHORIZED, adminToken ? "missing or wrong admin token" : "admin is disabled on this coordinator");
    } else {
      const parsed = adminCommandSchema.safeParse(req.body);
      if (!parsed.success) {
        status = 400;
        result = protocolError(ErrorCode.INVALID_PAYLOAD, `admin: ${issueText(parsed.error, "body")}`);
      } else {
        try {
          result = { ok: true, value: applyAdminCommand(federation, parsed.data) };
          log.info({ action: parsed.data.action }, "admin command");
          changed();
        } catch (e) {
          log.error({ err: e }, "admin command failed");
          status = 500;
          result = protocolError(ErrorCode.INTERNAL, "internal error");
        }
      }
    }
    if (!result.ok) log.warn({ code: result.error.code, msg: result.error.message }, "admin rejected");
    res.status(status).json(result);
  };
}

/**
 * `flexmoe admin <action> [value] --url <coordinator> --token <t>`: the dashboard's controls from a
 * terminal. Sends `POST /api/admin` with `Authorization: Bearer <t>` and prints the answer.
 * Exit codes: 0 ok, 1 refused by the coordinator (the error code is printed), 2 usage or network.
 */
import { parseArgs } from "node:util";
import { adminCommandSchema, STRATEGY_NAMES, type AckResult } from "@flexmoe/core";
import type { AdminStatus } from "@flexmoe/coordinator";

const HELP = `usage: flexmoe admin <action> [value] --url <http(s)://host:port> --token <admin token>
actions:
  start                  start or resume rounds
  pause                  finish the open round, then start no new one
  reset                  start a new run (fresh model, Q, history); clients stay joined
  set-strategy <s>       ${STRATEGY_NAMES.join(" | ")} (from the next round)
  set-rounds <n>         stop after n completed rounds (0 = unbounded)
options:
  --url <url>            coordinator (default http://localhost:3000)
  --token <t>            the admin token printed at start-up (or FLEXMOE_ADMIN_TOKEN)
  --insecure             accept a self-signed certificate (flexmoe serve --https)
`;

export async function runAdmin(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: "string", default: "http://localhost:3000" },
        token: { type: "string" },
        insecure: { type: "boolean", default: false },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    });
  } catch (e) {
    console.error(`flexmoe admin: ${(e as Error).message}\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [action, raw] = positionals;
  const body = raw === undefined ? { action } : { action, value: action === "set-rounds" ? Number(raw) : raw };
  const cmd = adminCommandSchema.safeParse(body);
  if (!cmd.success) {
    console.error(`flexmoe admin: ${action === undefined ? "missing action" : `bad command '${positionals.join(" ")}'`}\n${HELP}`);
    return 2;
  }
  const token = values.token ?? process.env.FLEXMOE_ADMIN_TOKEN;
  if (!token) {
    console.error("flexmoe admin: --token is required (the coordinator prints it at start-up)");
    return 2;
  }
  // Node's fetch honours this for the self-signed certificate of `serve --https`; this process only.
  if (values.insecure) process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
  let res: AckResult<AdminStatus>;
  try {
    const resp = await fetch(new URL("/api/admin", values.url), {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(cmd.data),
    });
    res = (await resp.json()) as AckResult<AdminStatus>;
  } catch (e) {
    console.error(`flexmoe admin: cannot reach ${values.url}: ${(e as Error).message}`);
    return 2;
  }
  if (!res.ok) {
    console.error(`flexmoe admin: ${res.error.code}: ${res.error.message}`);
    return 1;
  }
  console.log(JSON.stringify(res.value));
  return 0;
}

/**
 * TLS material for `flexmoe serve --https`: a real certificate (`--cert`/`--key`), or a self-signed
 * one generated on first start and kept in `<data-dir>/tls/`. The self-signed certificate names
 * localhost and the given LAN addresses; it is regenerated when that list changes (new network).
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import path from "node:path";
import { generate } from "selfsigned";

export interface TlsMaterial {
  key: string;
  cert: string;
  /** "provided" for --cert/--key, "generated" or "reused" for the self-signed one. */
  source: "provided" | "generated" | "reused";
  fingerprint?: string;
}

export async function loadProvidedCert(certFile: string, keyFile: string): Promise<TlsMaterial> {
  const [cert, key] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
  return { cert, key, source: "provided" };
}

export async function loadOrCreateSelfSigned(dataDir: string, hosts: readonly string[], now: Date = new Date()): Promise<TlsMaterial> {
  const dir = path.join(dataDir, "tls");
  const names = [...new Set(["localhost", "127.0.0.1", ...hosts])].sort();
  try {
    const [cert, key, meta] = await Promise.all([
      readFile(path.join(dir, "cert.pem"), "utf8"),
      readFile(path.join(dir, "key.pem"), "utf8"),
      readFile(path.join(dir, "meta.json"), "utf8"),
    ]);
    const m = JSON.parse(meta) as { names?: string[]; notAfter?: string; fingerprint?: string };
    const valid = m.notAfter !== undefined && new Date(m.notAfter).getTime() > now.getTime() + 86_400_000;
    if (valid && JSON.stringify(m.names) === JSON.stringify(names))
      return { cert, key, source: "reused", ...(m.fingerprint ? { fingerprint: m.fingerprint } : {}) };
  } catch {
    // Nothing usable yet: generate below.
  }
  const notAfter = new Date(now.getTime() + 365 * 86_400_000);
  const pems = await generate([{ name: "commonName", value: "FLEX-MoE Web coordinator" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: notAfter,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: names.map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })) },
    ],
  });
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "key.pem"), pems.private, { mode: 0o600 });
  await writeFile(path.join(dir, "cert.pem"), pems.cert);
  await writeFile(
    path.join(dir, "meta.json"),
    JSON.stringify({ names, notAfter: notAfter.toISOString(), fingerprint: pems.fingerprint }, null, 2),
  );
  return { cert: pems.cert, key: pems.private, source: "generated", fingerprint: pems.fingerprint };
}

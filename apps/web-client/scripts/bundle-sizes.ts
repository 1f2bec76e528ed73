/**
 * What the built page costs to load, from Vite's manifest (dist/.vite/manifest.json): per entry, the
 * JavaScript a browser needs before the entry runs (the entry chunk and its static imports; for the
 * volunteer's page that is everything before TF.js and the backend chunk), and every chunk and asset
 * with its raw and gzip size (level 9, as the build's .gz files). `flexmoe bench --only bundle` reports
 * it; e2e/tests/throttled-join.spec.ts holds the page's first script to its budget.
 *
 *   npx tsx apps/web-client/scripts/bundle-sizes.ts [dist] [--json] [--budget-kb 150]
 *
 * With --budget-kb it exits 1 when the volunteer page's initial JS is over that many kB (1,000 bytes) gzipped.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gzipSync, constants as zlib } from "node:zlib";

/** The fields of Vite's ManifestChunk this script reads. */
export interface ManifestChunk {
  file: string;
  name?: string;
  src?: string;
  isEntry?: boolean;
  isDynamicEntry?: boolean;
  imports?: string[];
  dynamicImports?: string[];
  css?: string[];
  assets?: string[];
}
export type Manifest = Record<string, ManifestChunk>;

export interface Size {
  bytes: number;
  gzipBytes: number;
}

export interface FileSize extends Size {
  file: string;
  /** The manifest's chunk name or source (e.g. "main", "src/wasm.ts"); absent for plain assets. */
  name?: string;
  kind: "entry" | "lazy" | "shared" | "asset";
  /** Entries that load this file before they run. */
  initialFor: string[];
}

export interface EntrySize {
  /** The manifest key's chunk name ("main" for index.html, "dashboard"). */
  name: string;
  html: string;
  /** JS fetched before the entry runs: the entry chunk and its static imports, transitively. */
  initialJs: Size & { files: string[] };
  /** Chunks it may import later (dynamic imports, transitively, minus the initial ones). */
  lazyJs: Size & { files: string[] };
}

export interface BundleSizes {
  entries: EntrySize[];
  /** Every JS chunk and asset, largest gzip first. */
  files: FileSize[];
}

const sum = (sizes: readonly Size[]): Size => ({
  bytes: sizes.reduce((a, s) => a + s.bytes, 0),
  gzipBytes: sizes.reduce((a, s) => a + s.gzipBytes, 0),
});

/** The manifest keys reachable from `start` through `edge` (start included). */
function closure(manifest: Manifest, start: readonly string[], edge: (c: ManifestChunk) => readonly string[] | undefined): string[] {
  const seen = new Set<string>();
  const stack = [...start];
  while (stack.length > 0) {
    const key = stack.pop()!;
    if (seen.has(key) || !manifest[key]) continue;
    seen.add(key);
    stack.push(...(edge(manifest[key]) ?? []));
  }
  return [...seen];
}

/** Sizes of a build, given its manifest and a way to size one output file (path relative to dist). */
export function bundleSizes(manifest: Manifest, sizeOf: (file: string) => Size): BundleSizes {
  const sized = new Map<string, Size>();
  const size = (file: string): Size => {
    let s = sized.get(file);
    if (!s) sized.set(file, (s = sizeOf(file)));
    return s;
  };
  const entryKeys = Object.keys(manifest)
    .filter((k) => manifest[k]!.isEntry)
    .sort();
  const initialFor = new Map<string, string[]>();
  const entries = entryKeys.map((key): EntrySize => {
    const chunk = manifest[key]!;
    const name = chunk.name ?? key;
    const initial = closure(manifest, [key], (c) => c.imports).map((k) => manifest[k]!.file);
    for (const f of initial) initialFor.set(f, [...(initialFor.get(f) ?? []), name]);
    const dynamicRoots = closure(manifest, [key], (c) => c.imports).flatMap((k) => manifest[k]!.dynamicImports ?? []);
    const lazy = closure(manifest, dynamicRoots, (c) => [...(c.imports ?? []), ...(c.dynamicImports ?? [])])
      .map((k) => manifest[k]!.file)
      .filter((f) => f.endsWith(".js") && !initial.includes(f));
    return {
      name,
      html: key,
      initialJs: { ...sum(initial.map(size)), files: initial },
      lazyJs: { ...sum(lazy.map(size)), files: lazy },
    };
  });
  const files = new Map<string, FileSize>();
  for (const chunk of Object.values(manifest)) {
    const outputs = [chunk.file, ...(chunk.css ?? []), ...(chunk.assets ?? [])];
    for (const file of outputs) {
      if (files.has(file)) continue;
      const js = file.endsWith(".js");
      const own = file === chunk.file;
      const kind: FileSize["kind"] = !js ? "asset" : own && chunk.isEntry ? "entry" : own && chunk.isDynamicEntry ? "lazy" : "shared";
      const name = own ? (chunk.name ?? chunk.src) : undefined;
      files.set(file, { file, ...(name ? { name } : {}), kind, initialFor: initialFor.get(file) ?? [], ...size(file) });
    }
  }
  return { entries, files: [...files.values()].sort((a, b) => b.gzipBytes - a.gzipBytes || a.file.localeCompare(b.file)) };
}

/** Reads `dist/.vite/manifest.json` and sizes the files it names. */
export function readBundleSizes(distDir: string): BundleSizes {
  const manifest = JSON.parse(readFileSync(path.join(distDir, ".vite/manifest.json"), "utf8")) as Manifest;
  return bundleSizes(manifest, (file) => {
    const data = readFileSync(path.join(distDir, file));
    return { bytes: data.length, gzipBytes: gzipSync(data, { level: zlib.Z_BEST_COMPRESSION }).length };
  });
}

/** Kilobytes of 1,000 bytes, as Vite prints them. */
const kb = (n: number): string => `${(n / 1000).toFixed(1)} kB`;

export function formatBundleSizes(s: BundleSizes): string {
  const lines = ["entry        initial JS (gzip)   raw          lazy JS (gzip)"];
  for (const e of s.entries)
    lines.push(
      `${e.name.padEnd(12)} ${kb(e.initialJs.gzipBytes).padStart(12)}   ${kb(e.initialJs.bytes).padStart(10)}   ${kb(e.lazyJs.gzipBytes).padStart(12)}`,
    );
  lines.push("", "file                                                   kind     gzip        raw  initial for");
  for (const f of s.files)
    lines.push(
      `${f.file.padEnd(54)} ${f.kind.padEnd(6)} ${kb(f.gzipBytes).padStart(10)} ${kb(f.bytes).padStart(10)}  ${f.initialFor.join(", ") || "-"}`,
    );
  return lines.join("\n");
}

/** The volunteer's page: the entry built from index.html. */
export const pageEntry = (s: BundleSizes): EntrySize | undefined => s.entries.find((e) => e.html === "index.html");

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: "boolean", default: false }, "budget-kb": { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  const dist = path.resolve(positionals[0] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "../dist"));
  const sizes = readBundleSizes(dist);
  console.log(values.json ? JSON.stringify(sizes, null, 2) : formatBundleSizes(sizes));
  const budget = values["budget-kb"] === undefined ? null : Number(values["budget-kb"]);
  const page = pageEntry(sizes);
  if (budget !== null && page && page.initialJs.gzipBytes > budget * 1000) {
    console.error(`bundle-sizes: the page's initial JS is ${kb(page.initialJs.gzipBytes)} gzipped, over the ${budget} kB budget`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));

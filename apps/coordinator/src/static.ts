/**
 * The built page (apps/web-client/dist). The build writes `<file>.gz` beside every text and WASM file
 * (vite.config.ts), so a browser that accepts gzip gets those bytes without the coordinator compressing
 * per request. Vite's `assets/` names carry a content hash, so they are cached for a year and a return
 * visit fetches only the HTML (revalidated every time: it names the current hashes). Only files that
 * were in the web root at start-up are served compressed; anything else falls through to express.static.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import express, { type Response, type Router } from "express";

const IMMUTABLE = "public, max-age=31536000, immutable";
/** Routes that name a page without its file name. */
const PAGES: Readonly<Record<string, string>> = { "/": "/index.html", "/dashboard": "/dashboard.html" };

/** Every file under `dir`, as URL paths ("/assets/main-x.js"). */
function listFiles(dir: string, prefix = ""): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    // Dot entries (dist/.vite/manifest.json) are build metadata, not part of the page.
    if (e.name.startsWith(".")) return [];
    const url = `${prefix}/${e.name}`;
    return e.isDirectory() ? listFiles(path.join(dir, e.name), url) : [url];
  });
}

const cacheControl = (url: string): string => (url.startsWith("/assets/") ? IMMUTABLE : "no-cache");

export function staticPage(root: string): Router {
  const gz = new Set(
    listFiles(root)
      .filter((f) => f.endsWith(".gz"))
      .map((f) => f.slice(0, -3)),
  );
  const router = express.Router();
  router.use((req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    const url = PAGES[req.path] ?? req.path;
    if (!gz.has(url)) return next();
    res.vary("Accept-Encoding");
    if (!req.acceptsEncodings("gzip")) return next();
    res.setHeader("Content-Encoding", "gzip");
    // Set before sendFile, which only types a response that has no type yet (it would say .gz).
    res.type(path.extname(url));
    res.sendFile(
      path.join(root, `${url}.gz`),
      { cacheControl: false, acceptRanges: false, headers: { "Cache-Control": cacheControl(url) } },
      (e) => {
        if (!e) return;
        // Deleted by a rebuild since start-up: serve whatever is there now, uncompressed.
        if (!res.headersSent) {
          res.removeHeader("Content-Encoding");
          res.removeHeader("Content-Type");
          next();
        }
      },
    );
  });
  router.get("/dashboard", (_req, res) => sendPage(res, root, "/dashboard.html"));
  router.use(
    express.static(root, {
      index: "index.html",
      cacheControl: false,
      setHeaders: (res, file) => res.setHeader("Cache-Control", cacheControl(`/${path.relative(root, file).split(path.sep).join("/")}`)),
    }),
  );
  return router;
}

function sendPage(res: Response, root: string, url: string): void {
  res.sendFile(path.join(root, url), { cacheControl: false, headers: { "Cache-Control": "no-cache" } });
}

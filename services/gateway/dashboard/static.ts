// The dashboard's two assets (a style sheet and a small script), read once at start, served
// from /admin/static/ under a content hash so browsers may cache them for good.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Hono } from "hono";
import { fromRoot } from "../../../lib/layout.ts";

const TYPES = { "dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8" } as const;
type Asset = keyof typeof TYPES;

const assets = new Map(
  (Object.keys(TYPES) as Asset[]).map((name) => {
    const body = readFileSync(fromRoot("services/gateway/dashboard/static", name));
    return [name, { body, hash: createHash("sha256").update(body).digest("hex").slice(0, 10) }] as const;
  }),
);

export const assetUrl = (name: Asset) => `/admin/static/${name}?v=${assets.get(name)!.hash}`;

export function serveAssets(app: Hono<any>): void {
  app.get("/static/:name", (c) => {
    const name = c.req.param("name") as Asset;
    const asset = assets.get(name);
    if (!asset) return c.text("not found", 404);
    return c.body(new Uint8Array(asset.body), 200, { "content-type": TYPES[name], "cache-control": "public, max-age=31536000, immutable" });
  });
}

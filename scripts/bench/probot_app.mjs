// A minimal Probot app for scripts/bench_webhook.py: it verifies and parses issue_comment
// deliveries, stores nothing and answers 200 (Probot's own middleware answers once the
// handlers ran).
//
//   node scripts/bench/probot_app.mjs PROBOT_PREFIX PORT
//
// PROBOT_PREFIX is the `npm install --prefix` directory holding probot; the webhook
// secret comes from BENCH_WEBHOOK_SECRET. Listens on 127.0.0.1:PORT, path /webhook, and
// prints "listening" once it takes requests.
import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [prefix, port] = process.argv.slice(2);
const secret = process.env.BENCH_WEBHOOK_SECRET;
if (!prefix || !port || !secret) {
  console.error("usage: BENCH_WEBHOOK_SECRET=... node probot_app.mjs PROBOT_PREFIX PORT");
  process.exit(2);
}
const probotUrl = pathToFileURL(join(prefix, "node_modules", "probot", "lib", "index.js")).href;
const { Probot, createNodeMiddleware } = await import(probotUrl);

// Probot wants an app's private key; a fresh one is never used (no GitHub API call is made).
const { privateKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});
const probot = new Probot({ appId: 1, privateKey, secret, logLevel: "warn" });

let parsed = 0;
const app = (robot) => {
  robot.on("issue_comment.created", async (context) => {
    // What github-app reads before it stores anything.
    const { comment, issue, repository, sender } = context.payload;
    if (comment.body.length >= 0 && issue.number > 0 && repository.full_name && sender.id) {
      parsed += 1;
    }
  });
};

const middleware = await createNodeMiddleware(app, { probot, webhooksPath: "/webhook" });
const server = createServer(async (req, res) => {
  if (req.url === "/parsed") {
    res.writeHead(200, { "content-type": "text/plain" }).end(String(parsed));
    return;
  }
  if (!(await middleware(req, res))) {
    res.writeHead(404).end();
  }
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), "127.0.0.1", () => console.log("listening"));
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

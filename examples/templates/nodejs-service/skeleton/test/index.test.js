const test = require("node:test");
const assert = require("node:assert");
const http = require("node:http");
const { handler } = require("../src/index.js");

test("answers the health check", async () => {
  const server = http.createServer(handler).listen(0);
  const { port } = server.address();
  const response = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.strictEqual(response.status, 200);
  assert.strictEqual(await response.text(), "ok\n");
  server.close();
});

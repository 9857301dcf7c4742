// ${{ values.name }}: the team's standard Node.js service, with a health check
// for the platform's probes.
const http = require("node:http");

function handler(request, response) {
  if (request.url === "/healthz") {
    response.writeHead(200, { "content-type": "text/plain" });
    response.end("ok\n");
    return;
  }
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify({ service: "${{ values.name }}" }) + "\n");
}

if (require.main === module) {
  const port = Number(process.env.PORT || 8080);
  http.createServer(handler).listen(port, () => {
    console.log(`${{ values.name }} listening on ${port}`);
  });
}

module.exports = { handler };

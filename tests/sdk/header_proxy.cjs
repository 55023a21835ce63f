// A reverse proxy that adds `Authorization: Bearer <token>` to every request, for clients
// that cannot send it (the MCP conformance suite). Everything else passes unchanged, Host
// and Origin included, so the server's own checks still see what the client sent. Prints its
// port on stdout.
//
// usage: node header_proxy.cjs <target origin> <token>
const http = require('node:http');

const [target, token] = process.argv.slice(2);
const server = http.createServer((request, response) => {
  const url = new URL(request.url, target);
  const headers = { ...request.headers, authorization: `Bearer ${token}` };
  const upstream = http.request(url, { method: request.method, headers }, (answer) => {
    response.writeHead(answer.statusCode, answer.headers);
    answer.pipe(response);
  });
  upstream.on('error', (e) => {
    response.writeHead(502);
    response.end(String(e));
  });
  request.pipe(upstream);
  response.on('close', () => upstream.destroy());
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));

// A webhook receiver in Node: listens on a free loopback port, prints "listening URL", then one JSON
// line per request ({method, path, body, answered}). The first --fail-first N requests are answered
// 503 and the first --down-first N are closed unanswered; the others 200 "ok".
import http from "node:http";

const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : 0;
};
let failFirst = option("--fail-first");
let downFirst = option("--down-first");

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    let answered = 200;
    if (downFirst > 0) {
      downFirst -= 1;
      answered = null;
    } else if (failFirst > 0) {
      failFirst -= 1;
      answered = 503;
    }
    process.stdout.write(JSON.stringify({ method: request.method, path: request.url, body, answered }) + "\n");
    if (answered === null) {
      request.socket.destroy();
      return;
    }
    response.writeHead(answered, { "Content-Type": "text/plain" });
    response.end(answered === 200 ? "ok" : "busy");
  });
});
server.keepAliveTimeout = 5000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening http://127.0.0.1:${server.address().port}/\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));

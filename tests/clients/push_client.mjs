// Node's fetch (undici) with its defaults, or axios when the first argument is "axios" (resolved
// from the npm prefix in AXIOS_PREFIX). A body file named *.chunked is sent as a stream: fetch then sends it chunked.
// Usage: node push_client.mjs fetch|axios URL BODY_FILE [URL BODY_FILE ...]; prints "STATUS BODY".
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const [which, ...args] = process.argv.slice(2);
for (let i = 0; i + 1 < args.length; i += 2) {
  const url = args[i];
  const data = readFileSync(args[i + 1]);
  const headers = { "Content-Type": "application/json" };
  if (which === "axios") {
    const axios = createRequire(process.env.AXIOS_PREFIX + "/index.js")("axios");
    const response = await axios.post(url, data, { headers, validateStatus: () => true, responseType: "text", transformResponse: (x) => x });
    console.log(`${response.status} HTTP/1.1 ${response.data}`);
  } else {
    let body = data;
    const options = { method: "POST", headers };
    if (args[i + 1].endsWith(".chunked")) {
      body = new ReadableStream({ start(c) { c.enqueue(data); c.close(); } });
      options.duplex = "half";
    }
    const response = await fetch(url, { ...options, body });
    console.log(`${response.status} HTTP/1.1 ${await response.text()}`);
  }
}

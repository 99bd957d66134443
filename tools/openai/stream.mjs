// Streams one chat completion from an OpenAI-compatible server (rewind
// record, replay or serve) with the official OpenAI Node client, and prints
// the text, the time to first token and the gaps between tokens.
//
//   cd tools/openai && npm install
//   node stream.mjs http://127.0.0.1:8080/v1 "Tell me a story."
import OpenAI from "openai";

const [baseURL = "http://127.0.0.1:8080/v1", prompt = "Tell me a story."] =
  process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-not-a-real-key", maxRetries: 0 });

const start = performance.now();
const arrivals = [];
let text = "";
let stream;
try {
  stream = await client.chat.completions.create({
    model: "demo-model",
    stream: true,
    messages: [{ role: "user", content: prompt }],
  });
} catch (err) {
  // A replay miss arrives as an OpenAI-style error: status 404 and rewind's
  // explanation of the nearest recording.
  console.log(`error ${err.status}: ${err.message}`);
  process.exit(1);
}
for await (const chunk of stream) {
  arrivals.push(performance.now() - start);
  text += chunk.choices[0]?.delta?.content ?? "";
}
const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]);
const sorted = [...gaps].sort((a, b) => a - b);
const pct = (p) => (sorted.length ? sorted[Math.floor(p * (sorted.length - 1))] : 0);
console.log(`text: ${JSON.stringify(text)}`);
console.log(
  `chunks: ${arrivals.length}  ttft: ${arrivals[0]?.toFixed(1)} ms  ` +
    `itl p50: ${pct(0.5).toFixed(1)} ms  p90: ${pct(0.9).toFixed(1)} ms  ` +
    `total: ${arrivals.at(-1)?.toFixed(1)} ms`,
);

// Calls rewind with the official Anthropic (`@anthropic-ai/sdk`) and
// Ollama (`ollama`) Node clients and prints what each call returned, one
// line per call. Run by tools/clients/dialects.sh from a directory where
// both are installed:
//
//   node dialects.mjs BASE_URL LABEL
//
// The calls and their bodies are the same on every run, so a recording made
// of one run replays the next. The last call of each client is never
// recorded: it shows how the client reports a replay miss.
import Anthropic from "@anthropic-ai/sdk";
import { Ollama } from "ollama";
import { readFileSync } from "node:fs";

const [baseURL, label = "dialects"] = process.argv.slice(2);
// Read from the files: neither package exports its package.json.
const version = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version;
const versions = { anthropic: version("@anthropic-ai/sdk"), ollama: version("ollama") };
const anthropic = new Anthropic({ baseURL, apiKey: "sk-ant-not-a-real-key", maxRetries: 0 });
const ollama = new Ollama({ host: baseURL });
const show = (value) => JSON.stringify(value);

async function call(client, name, fn) {
  const tag = `${label} ${client}@${versions[client === "anthropic" ? "anthropic" : "ollama"]}`;
  const start = performance.now();
  try {
    const result = await fn();
    const ms = (performance.now() - start).toFixed(0);
    console.log(`${tag} ${name}: ${result}  [${ms} ms]`);
  } catch (err) {
    const status = err?.status ?? err?.status_code ?? "-";
    console.log(`${tag} ${name}: ERROR ${err?.constructor?.name} ${status}: ${err?.message}`);
  }
}

const weather = {
  type: "object",
  properties: {
    city: { type: "string" },
    unit: { type: "string", enum: ["celsius", "fahrenheit"] },
    days: { type: "integer", minimum: 1, maximum: 7 },
  },
  required: ["city", "unit"],
};
const model = "claude-rewind-test";  // a name the SDK knows no deprecation of

await call("anthropic", "messages.create", async () => {
  const m = await anthropic.messages.create({
    model,
    max_tokens: 12,
    messages: [{ role: "user", content: "Say something." }],
  });
  return `${show(m.content[0].text)} stop=${m.stop_reason} usage=${m.usage.input_tokens}+${m.usage.output_tokens}`;
});

await call("anthropic", "messages.stream", async () => {
  const stream = anthropic.messages.stream({
    model,
    max_tokens: 12,
    messages: [{ role: "user", content: "Stream something." }],
  });
  let deltas = 0;
  stream.on("text", () => (deltas += 1));
  const m = await stream.finalMessage();
  return `${show(m.content[0].text)} deltas=${deltas} stop=${m.stop_reason} usage=${m.usage.input_tokens}+${m.usage.output_tokens}`;
});

await call("anthropic", "tool_use", async () => {
  const m = await anthropic.messages.create({
    model,
    max_tokens: 64,
    tools: [{ name: "get_weather", description: "Weather in a city", input_schema: weather }],
    messages: [{ role: "user", content: "Weather in Paris?" }],
  });
  const tool = m.content.find((b) => b.type === "tool_use");
  const ok = tool && typeof tool.input.city === "string" && ["celsius", "fahrenheit"].includes(tool.input.unit);
  // The tool's result goes back; the answer is text.
  const next = await anthropic.messages.create({
    model,
    max_tokens: 12,
    tools: [{ name: "get_weather", description: "Weather in a city", input_schema: weather }],
    messages: [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: m.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: tool.id, content: "sunny, 21 C" }] },
    ],
  });
  return `${tool.name}(${show(tool.input)}) fits=${ok} stop=${m.stop_reason}; then ${show(next.content[0].text)} stop=${next.stop_reason}`;
});

await call("anthropic", "tool_use streamed", async () => {
  const stream = anthropic.messages.stream({
    model,
    max_tokens: 64,
    tool_choice: { type: "tool", name: "get_weather" },
    tools: [{ name: "get_weather", input_schema: weather }],
    messages: [{ role: "user", content: "Weather in Rome?" }],
  });
  let pieces = 0;
  stream.on("inputJson", () => (pieces += 1));
  const m = await stream.finalMessage();
  const tool = m.content[0];
  return `${tool.name}(${show(tool.input)}) from ${pieces} input_json_delta pieces, stop=${m.stop_reason}`;
});

await call("anthropic", "unrecorded prompt", async () => {
  const m = await anthropic.messages.create({
    model,
    max_tokens: 12,
    messages: [{ role: "user", content: `A prompt never recorded (${label}).` }],
  });
  return show(m.content[0].text);
});

await call("ollama", "chat", async () => {
  const r = await ollama.chat({ model: "llama3.2", messages: [{ role: "user", content: "Say something." }] });
  return `${show(r.message.content)} done_reason=${r.done_reason} eval_count=${r.eval_count}`;
});

await call("ollama", "chat stream", async () => {
  const stream = await ollama.chat({
    model: "llama3.2",
    messages: [{ role: "user", content: "Stream something." }],
    stream: true,
  });
  let text = "";
  let parts = 0;
  let last;
  for await (const part of stream) {
    parts += 1;
    text += part.message.content;
    last = part;
  }
  return `${show(text)} parts=${parts} done=${last.done} done_reason=${last.done_reason} eval_count=${last.eval_count}`;
});

await call("ollama", "generate", async () => {
  const r = await ollama.generate({ model: "llama3.2", prompt: "Complete this.", options: { num_predict: 6 } });
  return `${show(r.response)} done_reason=${r.done_reason}`;
});

await call("ollama", "tools", async () => {
  const r = await ollama.chat({
    model: "llama3.2",
    messages: [{ role: "user", content: "Weather in Oslo?" }],
    tools: [{ type: "function", function: { name: "get_weather", description: "Weather", parameters: weather } }],
  });
  const c = r.message.tool_calls?.[0]?.function;
  return c ? `${c.name}(${show(c.arguments)})` : `no tool call: ${show(r.message.content)}`;
});

await call("ollama", "list", async () => {
  const r = await ollama.list();
  return r.models.map((m) => m.name).join(",");
});

await call("ollama", "unrecorded prompt", async () => {
  const r = await ollama.chat({
    model: "llama3.2",
    messages: [{ role: "user", content: `A prompt never recorded (${label}).` }],
  });
  return show(r.message.content);
});

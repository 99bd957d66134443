// Calls rewind with the official `openai` Node client and prints what each
// call returned, one line per call. Run by tools/clients/run.sh from a
// directory where `openai` (and zod) are installed:
//
//   node openai_check.mjs BASE_URL LABEL
//
// The calls and their bodies are the same on every run, so a recording
// made of one run replays the next (the follow-up turns carry the ids the
// first turns returned, and replay returns the recorded ones).
import OpenAI from "openai";
import { readFileSync } from "node:fs";
import { z } from "zod";
import * as zodHelpers from "openai/helpers/zod";

const [baseURL, label = "openai"] = process.argv.slice(2);
// Read from the file: openai 4's exports map "openai/package.json" to a
// package.json.js that does not exist.
const version = JSON.parse(
  readFileSync(new URL("./node_modules/openai/package.json", import.meta.url)),
).version;
const client = new OpenAI({ baseURL, apiKey: "sk-not-a-real-key", maxRetries: 0 });
const model = "gpt-4o-mini";
const tag = `${label} openai@${version}`;

const show = (value) => JSON.stringify(value);
async function call(name, fn) {
  const start = performance.now();
  try {
    const result = await fn();
    const ms = (performance.now() - start).toFixed(0);
    console.log(`${tag} ${name}: ${result}  [${ms} ms]`);
  } catch (err) {
    const status = err?.status ?? "-";
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
  additionalProperties: false,
};
const Person = z.object({
  name: z.string(),
  age: z.number().int().min(0).max(120),
  tags: z.array(z.enum(["admin", "user", "guest"])),
  nickname: z.string().nullable(),
  address: z.object({ city: z.string(), zip: z.string() }),
});

await call("chat", async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "Say something." }],
    max_tokens: 12,
  });
  return `${show(r.choices[0].message.content)} finish=${r.choices[0].finish_reason} usage=${r.usage.prompt_tokens}+${r.usage.completion_tokens}`;
});

await call("chat stream", async () => {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "Stream something." }],
    max_tokens: 8,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let chunks = 0;
  let usage;
  for await (const chunk of stream) {
    chunks++;
    text += chunk.choices[0]?.delta?.content ?? "";
    usage = chunk.usage ?? usage;
  }
  return `${show(text)} chunks=${chunks} usage=${usage?.completion_tokens}`;
});

await call("responses.create", async () => {
  const r = await client.responses.create({
    model,
    instructions: "Be brief.",
    input: "Tell me about rewind.",
    max_output_tokens: 16,
  });
  return `${r.id.slice(0, 5)}… status=${r.status} ${show(r.output_text)} usage=${r.usage.input_tokens}+${r.usage.output_tokens}`;
});

await call("responses.stream", async () => {
  const stream = client.responses.stream({
    model,
    input: [{ role: "user", content: "Stream about rewind." }],
    max_output_tokens: 16,
  });
  const types = new Map();
  stream.on("event", (e) => types.set(e.type, (types.get(e.type) ?? 0) + 1));
  let deltas = "";
  stream.on("response.output_text.delta", (e) => (deltas += e.delta));
  const final = await stream.finalResponse();
  const events = [...types].map(([t, n]) => (n > 1 ? `${t.slice(9)}×${n}` : t.slice(9)));
  // openai 4's finalResponse() has no output_text (openai-node#1662): the
  // text is then read from the output items.
  const text = final.output_text ?? final.output
    .filter((o) => o.type === "message")
    .flatMap((o) => o.content)
    .filter((c) => c.type === "output_text")
    .map((c) => c.text)
    .join("");
  return `${show(text)} deltas ${text === deltas ? "add up to it" : `DIFFER: ${show(deltas)}`} events=${events.join(",")}`;
});

await call("chat tools", async () => {
  const messages = [{ role: "user", content: "What is the weather in Paris?" }];
  const tools = [{ type: "function", function: { name: "get_weather", parameters: weather } }];
  const first = await client.chat.completions.create({
    model, messages, tools, tool_choice: "required",
  });
  const msg = first.choices[0].message;
  const tc = msg.tool_calls[0];
  const args = JSON.parse(tc.function.arguments);
  messages.push(msg, { role: "tool", tool_call_id: tc.id, content: '{"temp":21}' });
  const second = await client.chat.completions.create({ model, messages, tools, max_tokens: 8 });
  return `call ${tc.function.name}(${show(args)}) finish=${first.choices[0].finish_reason}; then ${show(second.choices[0].message.content)}`;
});

await call("chat tools stream", async () => {
  const stream = await client.chat.completions.create({
    model,
    stream: true,
    messages: [{ role: "user", content: "Weather in Oslo, streamed?" }],
    tools: [{ type: "function", function: { name: "get_weather", parameters: weather } }],
    tool_choice: { type: "function", function: { name: "get_weather" } },
  });
  let name = "";
  let args = "";
  let pieces = 0;
  for await (const chunk of stream) {
    for (const d of chunk.choices[0]?.delta?.tool_calls ?? []) {
      name += d.function?.name ?? "";
      if (d.function?.arguments) {
        args += d.function.arguments;
        pieces++;
      }
    }
  }
  return `${name}(${args}) in ${pieces} pieces`;
});

await call("responses tools", async () => {
  const tools = [{ type: "function", name: "get_weather", parameters: weather, strict: true }];
  const input = [{ role: "user", content: "Weather in Rome?" }];
  const first = await client.responses.create({ model, input, tools, tool_choice: "required" });
  const fc = first.output.find((o) => o.type === "function_call");
  const second = await client.responses.create({
    model,
    previous_response_id: first.id,
    input: [...input, fc, { type: "function_call_output", call_id: fc.call_id, output: '{"temp":25}' }],
    tools,
    max_output_tokens: 8,
  });
  return `call ${fc.name}(${fc.arguments}); then ${show(second.output_text)}`;
});

await call("structured chat (zod)", async () => {
  const parse = client.chat.completions.parse ?? client.beta.chat.completions.parse;
  const r = await parse.call(client.chat.completions.parse ? client.chat.completions : client.beta.chat.completions, {
    model,
    messages: [{ role: "user", content: "A person, please." }],
    response_format: zodHelpers.zodResponseFormat(Person, "person"),
  });
  const parsed = r.choices[0].message.parsed;
  Person.parse(parsed);
  return `valid ${show(parsed)}`;
});

await call("structured responses (schema)", async () => {
  const schema = {
    type: "object",
    properties: {
      title: { type: "string", maxLength: 20 },
      year: { type: "integer", minimum: 1900, maximum: 2030 },
      genres: { type: "array", items: { type: "string", enum: ["drama", "comedy"] }, minItems: 1 },
    },
    required: ["title", "year", "genres"],
    additionalProperties: false,
  };
  const r = await client.responses.create({
    model,
    input: "A film, please.",
    text: { format: { type: "json_schema", name: "film", schema, strict: true } },
  });
  const film = JSON.parse(r.output_text);
  const ok = typeof film.title === "string" && film.title.length <= 20 &&
    Number.isInteger(film.year) && film.year >= 1900 && film.year <= 2030 &&
    film.genres.length >= 1 && film.genres.every((g) => g === "drama" || g === "comedy");
  return `${ok ? "valid" : "INVALID"} ${r.output_text}`;
});

await call("embeddings", async () => {
  const r = await client.embeddings.create({
    model: "text-embedding-3-small",
    input: ["rewind", "replay", "rewind"],
    dimensions: 8,
  });
  const v = r.data.map((d) => d.embedding);
  const norm = Math.sqrt(v[0].reduce((s, x) => s + x * x, 0));
  const same = v[0].every((x, i) => x === v[2][i]);
  return `${r.data.length} vectors of ${v[0].length}, |v|=${norm.toFixed(6)}, v0=[${v[0].slice(0, 3).map((x) => x.toFixed(4)).join(",")}…], same input same vector: ${same}, usage=${r.usage.prompt_tokens}`;
});

await call("unknown model", async () => {
  const r = await client.chat.completions.create({
    model: "no-such-model",
    messages: [{ role: "user", content: "Hello?" }],
  });
  return show(r.choices[0].message.content);
});

await call(`unrecorded prompt`, async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: `asked only once, by the ${label} run` }],
    max_tokens: 4,
  });
  return show(r.choices[0].message.content);
});

// Calls rewind with the Vercel AI SDK (`ai` and `@ai-sdk/openai`) and prints
// what each call returned, one line per call. Run by tools/clients/ai_sdk.sh
// from a directory where `ai`, `@ai-sdk/openai` and zod are installed:
//
//   node ai_sdk_check.mjs BASE_URL LABEL
//
// Every call runs twice: with the provider's default model,
// `createOpenAI({ baseURL })(model)`, which calls POST /v1/responses, and
// with `.chat(model)`, which calls POST /v1/chat/completions. The calls and
// their bodies are the same on every run, so a recording made of one run
// replays the next. The last calls are never recorded: they show how the
// AI SDK reports a replay miss.
import { createOpenAI } from "@ai-sdk/openai";
import { embed, embedMany, generateObject, generateText, Output, streamText, stepCountIs, tool } from "ai";
import { readFileSync } from "node:fs";
import { z } from "zod";

const [baseURL, label = "ai-sdk"] = process.argv.slice(2);
// Read from the files: neither package exports its package.json.
const version = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version;
const tag = `${label} ai@${version("ai")} @ai-sdk/openai@${version("@ai-sdk/openai")}`;
const openai = createOpenAI({ baseURL, apiKey: "sk-not-a-real-key" });
const modelName = "gpt-4o-mini";
const providers = [
  ["responses", openai(modelName)],
  ["chat", openai.chat(modelName)],
];
const show = (value) => JSON.stringify(value);
// generateObject is deprecated from ai 7 on (for generateText's output), and
// still what most code calls: no warning for it on each run.
globalThis.AI_SDK_LOG_WARNINGS = false;

async function call(name, fn) {
  const start = performance.now();
  try {
    const result = await fn();
    const ms = (performance.now() - start).toFixed(0);
    console.log(`${tag} ${name}: ${result}  [${ms} ms]`);
  } catch (err) {
    // What an application shows: the error's class, its status and message.
    const status = err?.statusCode ?? err?.lastError?.statusCode ?? "-";
    console.log(`${tag} ${name}: ERROR ${err?.name} ${status}: ${err?.message}`);
  }
}

const getWeather = tool({
  description: "The weather in a city",
  inputSchema: z.object({
    city: z.string(),
    unit: z.enum(["celsius", "fahrenheit"]),
    days: z.number().int().min(1).max(7).optional(),
  }),
  execute: async ({ city }) => ({ city, temperature: 21, sky: "clear" }),
});
const Recipe = z.object({
  name: z.string(),
  servings: z.number().int().min(1).max(12),
  diet: z.enum(["vegan", "vegetarian", "any"]),
  ingredients: z.array(z.object({ item: z.string(), grams: z.number() })).min(1),
  note: z.string().nullable(),
});

for (const [api, model] of providers) {
  await call(`${api} generateText`, async () => {
    const r = await generateText({ model, prompt: "Say something.", maxOutputTokens: 16, maxRetries: 0 });
    return `${show(r.text)} finish=${r.finishReason} usage=${r.usage.inputTokens}+${r.usage.outputTokens}`;
  });

  await call(`${api} logprobs`, async () => {
    const r = await generateText({
      model,
      prompt: "Say something, with logprobs.",
      maxOutputTokens: 6,
      maxRetries: 0,
      providerOptions: { openai: { logprobs: 2 } },
    });
    // Chat gives one list of tokens; the Responses API one per text part.
    const lp = (r.providerMetadata?.openai?.logprobs ?? []).flat();
    const joined = lp.map((t) => t.token).join("");
    const tops = lp.every((t) => t.top_logprobs.length === 2 && t.top_logprobs[0].token === t.token);
    return `${show(r.text)} ${lp.length} tokens with logprobs${joined === r.text ? ", joined they are the text" : ` (joined: ${show(joined)}: DIFFER)`}, 2 alternatives each: ${tops}, first=${show(lp[0])}`;
  });

  await call(`${api} streamText`, async () => {
    const r = streamText({
      model,
      system: "Be brief.",
      prompt: "Stream something.",
      maxOutputTokens: 16,
      maxRetries: 0,
      onError: () => {},  // the error is rethrown below
    });
    let text = "";
    let chunks = 0;
    for await (const part of r.fullStream) {
      if (part.type === "text-delta") {
        text += part.text;
        chunks++;
      } else if (part.type === "error") {
        throw part.error;
      }
    }
    const usage = await r.usage;
    return `${show(text)} chunks=${chunks} finish=${await r.finishReason} usage=${usage.inputTokens}+${usage.outputTokens}`;
  });

  await call(`${api} tool call (zod)`, async () => {
    const r = await generateText({
      model,
      tools: { getWeather },
      prompt: "What is the weather in Paris?",
      maxOutputTokens: 64,
      maxRetries: 0,
      stopWhen: stepCountIs(2),
      // The first step must call the tool; the second gets its result.
      prepareStep: ({ stepNumber }) => (stepNumber === 0 ? { toolChoice: "required" } : {}),
    });
    const first = r.steps[0];
    const tc = first.toolCalls[0];
    getWeather.inputSchema.parse(tc.input);
    return `call ${tc.toolName}(${show(tc.input)}) finish=${first.finishReason} result=${show(first.toolResults[0]?.output)}; then ${show(r.text)} steps=${r.steps.length}`;
  });

  await call(`${api} tool call streamed`, async () => {
    const r = streamText({
      model,
      tools: { getWeather },
      toolChoice: { type: "tool", toolName: "getWeather" },
      prompt: "Weather in Oslo, streamed?",
      maxOutputTokens: 64,
      maxRetries: 0,
      onError: () => {},
    });
    let deltas = 0;
    const calls = [];
    for await (const part of r.fullStream) {
      if (part.type === "tool-input-delta") deltas++;
      else if (part.type === "tool-call") calls.push(part);
      else if (part.type === "error") throw part.error;
    }
    const tc = calls[0];
    getWeather.inputSchema.parse(tc.input);
    return `${tc.toolName}(${show(tc.input)}) from ${deltas} deltas, finish=${await r.finishReason}`;
  });

  await call(`${api} generateObject (zod)`, async () => {
    const r = await generateObject({
      model,
      schema: Recipe,
      schemaName: "recipe",
      prompt: "A recipe, please.",
      maxRetries: 0,
    });
    Recipe.parse(r.object);
    return `valid ${show(r.object)} finish=${r.finishReason}`;
  });

  await call(`${api} generateText Output.object`, async () => {
    const r = await generateText({
      model,
      output: Output.object({ schema: Recipe }),
      prompt: "Another recipe, please.",
      maxRetries: 0,
    });
    Recipe.parse(r.output);
    return `valid ${show(r.output)}`;
  });
}

await call("embed", async () => {
  const model = openai.embedding("text-embedding-3-small");
  const options = { openai: { dimensions: 8 } };
  const one = await embed({ model, value: "rewind", providerOptions: options, maxRetries: 0 });
  const many = await embedMany({ model, values: ["rewind", "replay"], providerOptions: options, maxRetries: 0 });
  const norm = Math.sqrt(one.embedding.reduce((s, x) => s + x * x, 0));
  const same = one.embedding.every((x, i) => x === many.embeddings[0][i]);
  return `${one.embedding.length} dims, |v|=${norm.toFixed(6)}, v=[${one.embedding.slice(0, 3).map((x) => x.toFixed(4)).join(",")}…], embedMany ${many.embeddings.length} vectors, same input same vector: ${same}, usage=${one.usage.tokens}+${many.usage.tokens}`;
});

await call("unknown model", async () => {
  const r = await generateText({ model: openai("no-such-model"), prompt: "Hello?", maxRetries: 0 });
  return show(r.text);
});

for (const [api, model] of providers) {
  await call(`${api} unrecorded prompt`, async () => {
    const r = await generateText({ model, prompt: `Asked only once, by the ${label} run.`, maxOutputTokens: 8, maxRetries: 0 });
    return show(r.text);
  });

  await call(`${api} streamText unrecorded prompt`, async () => {
    const r = streamText({
      model,
      prompt: `Streamed only once, by the ${label} run.`,
      maxOutputTokens: 8,
      maxRetries: 0,
      onError: () => {},
    });
    let text = "";
    for await (const part of r.fullStream) {
      if (part.type === "text-delta") text += part.text;
      else if (part.type === "error") throw part.error;
    }
    return show(text);
  });
}

// POST /v1/responses: OpenAI's Responses API in the dummy engine.
//
// A request's "input" (a string, or a list of messages and items:
// function_call, function_call_output, ...) and "instructions" are read
// as chat messages are; "text.format" is the response format; function
// "tools" and "tool_choice" work as in chat. The answer is one output
// item: a message with one output_text part, or function_call items.
// Streamed, it is the Responses API's event sequence, each event an SSE
// "event:" line and a "data:" line carrying its type and sequence_number:
//   response.created, response.in_progress,
//   per message: response.output_item.added, response.content_part.added,
//     response.output_text.delta (one per token), response.output_text.done,
//     response.content_part.done, response.output_item.done;
//   per function call: response.output_item.added,
//     response.function_call_arguments.delta (one per fragment),
//     response.function_call_arguments.done, response.output_item.done;
//   response.completed (response.incomplete when max_output_tokens cut
//   the text).
// "previous_response_id" is accepted and echoed; nothing is stored, so the
// input must carry the conversation (as a stateless server's does).
// Logprobs come when "include" lists "message.output_text.logprobs", with
// "top_logprobs" alternatives: on the output_text part, each
// output_text.delta and output_text.done.
#include <utility>
#include <vector>

#include "synth/engine_util.h"
#include "synth/generation.h"
#include "synth/tools.h"

namespace rwd {
namespace {

using rapidjson::Value;

const Value* Member(const Value& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto m = v.FindMember(name);
  return m == v.MemberEnd() || m->value.IsNull() ? nullptr : &m->value;
}

int CountTokens(const std::string& text) {
  return static_cast<int>(Tokenize(text).size());
}

// What a Responses request asks, beyond the OpenAIRequest the engine
// generates from: the members the response object echoes.
struct ResponsesRequest {
  rapidjson::Document doc;
  OpenAIRequest r;
};

Status ParseResponses(const std::string& body, ResponsesRequest* out) {
  auto bad = [](const std::string& m) { return Status::InvalidArgument(m); };
  if (Status s = CheckRequestDepth(body); !s.ok()) return s;
  rapidjson::Document& d = out->doc;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject())
    return bad("the request body is not a JSON object");
  OpenAIRequest& r = out->r;
  r.kind = OpenAIRequest::Kind::kResponses;
  if (const Value* m = Member(d, "model")) {
    if (!m->IsString()) return bad("'model' must be a string");
    r.model = m->GetString();
  }
  if (const Value* i = Member(d, "instructions")) {
    if (!i->IsString()) return bad("'instructions' must be a string");
    r.prompt_tokens += CountTokens(i->GetString());
  }
  if (const Value* p = Member(d, "previous_response_id"); p && !p->IsString()) {
    return bad("'previous_response_id' must be a string");
  }
  const Value* input = Member(d, "input");
  if (input == nullptr) return bad("'input' is required");
  if (input->IsString()) {
    r.prompt.assign(input->GetString(), input->GetStringLength());
    r.prompt_tokens += CountTokens(r.prompt);
  } else if (input->IsArray()) {
    std::string last_text;
    for (const auto& item : input->GetArray()) {
      if (!item.IsObject()) return bad("each 'input' item must be an object");
      const Value* type = Member(item, "type");
      if (type && !type->IsString())
        return bad("an 'input' item's 'type' must be a string");
      const std::string kind = type ? type->GetString() : "message";
      r.after_tool_result = kind == "function_call_output";
      if (kind == "message") {
        const Value* role = Member(item, "role");
        if (role == nullptr || !role->IsString()) {
          return bad("each 'input' message needs a string 'role'");
        }
        const Value* content = Member(item, "content");
        const std::string text =
            content ? ContentText(*content) : std::string();
        r.prompt_tokens += CountTokens(text);
        last_text = text;
        if (std::string(role->GetString()) == "user") r.prompt = text;
      } else if (kind == "function_call") {
        if (const Value* a = Member(item, "arguments"); a && a->IsString()) {
          r.prompt_tokens += CountTokens(a->GetString());
        }
      } else if (kind == "function_call_output") {
        if (const Value* o = Member(item, "output")) {
          r.prompt_tokens +=
              CountTokens(o->IsString() ? o->GetString() : ContentText(*o));
        }
      }
    }
    if (r.prompt.empty()) r.prompt = last_text;
  } else {
    return bad("'input' must be a string or an array of items");
  }
  if (const Value* m = Member(d, "max_output_tokens")) {
    if (!m->IsInt() || m->GetInt() < 1)
      return bad("'max_output_tokens' must be a positive integer");
    r.max_tokens = m->GetInt();
  }
  if (const Value* s = Member(d, "stream")) {
    if (!s->IsBool()) return bad("'stream' must be a boolean");
    r.stream = s->GetBool();
  }
  if (const Value* t = Member(d, "tools")) {
    if (Status s = ParseTools(*t, /*responses_shape=*/true, &r); !s.ok())
      return s;
  }
  if (const Value* t = Member(d, "tool_choice")) {
    if (Status s = ParseToolChoice(*t, &r); !s.ok()) return s;
  }
  if (const Value* p = Member(d, "parallel_tool_calls"); p && !p->IsBool()) {
    return bad("'parallel_tool_calls' must be a boolean");
  }
  if (const Value* text = Member(d, "text")) {
    if (!text->IsObject()) return bad("'text' must be an object");
    if (const Value* f = Member(*text, "format")) {
      if (Status s = ParseResponseFormat(*f, /*responses_shape=*/true, &r);
          !s.ok())
        return s;
    }
  }
  for (const char* name : {"temperature", "top_p"}) {
    if (const Value* v = Member(d, name); v && !v->IsNumber()) {
      return bad(std::string("'") + name + "' must be a number");
    }
  }
  if (const Value* m = Member(d, "metadata"); m && !m->IsObject()) {
    return bad("'metadata' must be an object");
  }
  if (const Value* top = Member(d, "top_logprobs")) {
    if (!top->IsInt() || top->GetInt() < 0 || top->GetInt() > 20) {
      return bad("'top_logprobs' must be an integer from 0 to 20");
    }
    r.top_logprobs = top->GetInt();
  }
  if (const Value* include = Member(d, "include")) {
    if (!include->IsArray())
      return bad("'include' must be an array of strings");
    for (const auto& what : include->GetArray()) {
      if (!what.IsString()) return bad("'include' must be an array of strings");
      if (std::string(what.GetString()) == "message.output_text.logprobs")
        r.logprobs = true;
    }
  }
  return Status::Ok();
}

// The answer, ready to be written as a response object or as events.
struct Answer {
  const ResponsesRequest* request;
  std::string id;                          // resp_...
  std::string message_id;                  // msg_...
  std::vector<std::string> call_item_ids;  // fc_..., one per call
  std::string model;
  int64_t created = 0;
  PlannedChoice choice;

  bool incomplete() const { return choice.finish_reason == "length"; }
};

void Echo(JsonWriter* w, const Value& doc, const char* name) {
  w->Key(name);
  if (const Value* v = Member(doc, name)) {
    v->Accept(*w);
  } else {
    w->Null();
  }
}

// "logprobs": those of tokens [from, to) of the answer (none unless asked).
void Logprobs(JsonWriter* w, const Answer& a, size_t from, size_t to) {
  w->Key("logprobs");
  w->StartArray();
  const std::vector<TokenLogprob>& lp = a.choice.logprobs;
  for (size_t i = from; i < to && i < lp.size(); ++i) {
    WriteTokenLogprob(w, lp[i], a.request->r.top_logprobs);
  }
  w->EndArray();
}

// The output_text part; "done" false: empty, as content_part.added shows it.
void OutputTextPart(JsonWriter* w, const Answer& a, bool done) {
  w->StartObject();
  w->Key("type");
  w->String("output_text");
  w->Key("text");
  WriteString(w, done ? a.choice.Text() : std::string());
  w->Key("annotations");
  w->StartArray();
  w->EndArray();
  Logprobs(w, a, 0, done ? a.choice.tokens.size() : 0);
  w->EndObject();
}

// The message item; "done" false: as output_item.added shows it.
void MessageItem(JsonWriter* w, const Answer& a, bool done) {
  w->StartObject();
  w->Key("id");
  WriteString(w, a.message_id);
  w->Key("type");
  w->String("message");
  w->Key("status");
  w->String(!done            ? "in_progress"
            : a.incomplete() ? "incomplete"
                             : "completed");
  w->Key("content");
  w->StartArray();
  if (done) OutputTextPart(w, a, /*done=*/true);
  w->EndArray();
  w->Key("role");
  w->String("assistant");
  w->EndObject();
}

void FunctionCallItem(JsonWriter* w, const Answer& a, size_t k, bool done) {
  const PlannedCall& call = a.choice.calls[k];
  w->StartObject();
  w->Key("id");
  WriteString(w, a.call_item_ids[k]);
  w->Key("type");
  w->String("function_call");
  w->Key("status");
  w->String(done ? "completed" : "in_progress");
  w->Key("arguments");
  WriteString(w, done ? call.arguments : std::string());
  w->Key("call_id");
  WriteString(w, call.id);
  w->Key("name");
  WriteString(w, call.name);
  w->EndObject();
}

// The response object: "final" false is the in-progress snapshot of
// response.created and response.in_progress (no output, no usage).
void ResponseObject(JsonWriter* w, const Answer& a, bool final) {
  const Value& doc = a.request->doc;
  const OpenAIRequest& r = a.request->r;
  w->StartObject();
  w->Key("id");
  WriteString(w, a.id);
  w->Key("object");
  w->String("response");
  w->Key("created_at");
  w->Int64(a.created);
  w->Key("status");
  w->String(!final           ? "in_progress"
            : a.incomplete() ? "incomplete"
                             : "completed");
  w->Key("background");
  w->Bool(false);
  w->Key("error");
  w->Null();
  w->Key("incomplete_details");
  if (final && a.incomplete()) {
    w->StartObject();
    w->Key("reason");
    w->String("max_output_tokens");
    w->EndObject();
  } else {
    w->Null();
  }
  Echo(w, doc, "instructions");
  Echo(w, doc, "max_output_tokens");
  w->Key("max_tool_calls");
  w->Null();
  w->Key("model");
  WriteString(w, a.model);
  w->Key("output");
  w->StartArray();
  if (final) {
    if (a.choice.calls.empty()) {
      MessageItem(w, a, true);
    } else {
      for (size_t k = 0; k < a.choice.calls.size(); ++k)
        FunctionCallItem(w, a, k, true);
    }
  }
  w->EndArray();
  w->Key("parallel_tool_calls");
  const Value* parallel = Member(doc, "parallel_tool_calls");
  w->Bool(parallel == nullptr || parallel->GetBool());
  Echo(w, doc, "previous_response_id");
  w->Key("reasoning");
  w->StartObject();
  w->Key("effort");
  w->Null();
  w->Key("summary");
  w->Null();
  w->EndObject();
  w->Key("service_tier");
  w->String("default");
  w->Key("store");
  const Value* store = Member(doc, "store");
  w->Bool(store == nullptr || !store->IsBool() || store->GetBool());
  w->Key("temperature");
  const Value* temperature = Member(doc, "temperature");
  w->Double(temperature ? temperature->GetDouble() : 1.0);
  w->Key("text");
  w->StartObject();
  w->Key("format");
  const Value* text = Member(doc, "text");
  const Value* format = text ? Member(*text, "format") : nullptr;
  if (format) {
    format->Accept(*w);
  } else {
    w->StartObject();
    w->Key("type");
    w->String("text");
    w->EndObject();
  }
  w->EndObject();
  w->Key("tool_choice");
  if (const Value* c = Member(doc, "tool_choice")) {
    c->Accept(*w);
  } else {
    w->String("auto");
  }
  w->Key("tools");
  if (const Value* t = Member(doc, "tools")) {
    t->Accept(*w);
  } else {
    w->StartArray();
    w->EndArray();
  }
  w->Key("top_logprobs");
  w->Int(r.top_logprobs);
  w->Key("top_p");
  const Value* top_p = Member(doc, "top_p");
  w->Double(top_p ? top_p->GetDouble() : 1.0);
  w->Key("truncation");
  w->String("disabled");
  w->Key("usage");
  if (final) {
    const int out = static_cast<int>(a.choice.Steps());
    w->StartObject();
    w->Key("input_tokens");
    w->Int(r.prompt_tokens);
    w->Key("input_tokens_details");
    w->StartObject();
    w->Key("cached_tokens");
    w->Int(0);
    w->EndObject();
    w->Key("output_tokens");
    w->Int(out);
    w->Key("output_tokens_details");
    w->StartObject();
    w->Key("reasoning_tokens");
    w->Int(0);
    w->EndObject();
    w->Key("total_tokens");
    w->Int(r.prompt_tokens + out);
    w->EndObject();
  } else {
    w->Null();
  }
  w->Key("user");
  w->Null();
  w->Key("metadata");
  if (const Value* m = Member(doc, "metadata")) {
    m->Accept(*w);
  } else {
    w->StartObject();
    w->EndObject();
  }
  w->EndObject();
}

// Writes SSE events, numbering them.
class EventStream {
 public:
  explicit EventStream(Response* res) : res_(res) {}

  // One event at "at": "fill" writes the members after type and
  // sequence_number.
  template <typename Fill>
  void Add(int64_t at, const char* type, Fill fill) {
    rapidjson::StringBuffer b;
    JsonWriter w(b);
    w.StartObject();
    w.Key("type");
    w.String(type);
    w.Key("sequence_number");
    w.Int(sequence_++);
    fill(&w);
    w.EndObject();
    res_->chunks.push_back({at, std::string("event: ") + type +
                                    "\ndata: " + TakeJson(&b) + "\n\n"});
  }

 private:
  Response* res_;
  int sequence_ = 0;
};

}  // namespace

SynthPlan Synthesizer::PlanResponses(const Request& http,
                                     const SynthContext& ctx) const {
  const int64_t start = ctx.admitted_us;
  ResponsesRequest req;
  if (Status s = ParseResponses(http.body, &req); !s.ok()) {
    return ErrorPlan(400, s.message(), "invalid_request_error", "", start);
  }
  const OpenAIRequest& r = req.r;
  const std::optional<std::string> served = ServedModel(options_, r.model);
  if (!served) return UnknownModelPlan(r.model, start);
  std::mt19937_64 rng(ctx.seed);
  const FaultType fault = DrawFault(options_, ctx, rng);
  if (std::optional<SynthPlan> failed =
          ErrorFaultPlan(fault, options_, start)) {
    failed->prompt_tokens = r.prompt_tokens;
    return std::move(*failed);
  }

  Answer a;
  a.request = &req;
  a.id = HexId("resp_", ctx.seed);
  a.model = *served;
  a.created = ctx.created;
  a.choice = PlanChoice(r, options_, rng);
  a.message_id = HexId("msg_", rng());
  for (size_t k = 0; k < a.choice.calls.size(); ++k)
    a.call_item_ids.push_back(HexId("fc_", rng()));
  const int64_t ttft = FirstTokenAt(options_, ctx, r.prompt_tokens, rng);
  const size_t steps = a.choice.Steps();

  SynthPlan plan;
  plan.prompt_tokens = r.prompt_tokens;
  plan.completion_tokens = static_cast<int>(steps);
  plan.fault = fault;
  Response& res = plan.response;
  res.status = 200;

  if (!r.stream) {
    int64_t at = ttft;
    for (size_t t = 1; t < steps; ++t) at += TokenGap(options_, ctx, rng);
    rapidjson::StringBuffer b;
    JsonWriter w(b);
    ResponseObject(&w, a, /*final=*/true);
    SetBody(TakeJson(&b), at, fault, options_, &plan);
    return plan;
  }

  res.chunked = true;
  res.headers = {{"Content-Type", "text/event-stream"},
                 {"Cache-Control", "no-cache"}};
  res.headers_us = start;
  EventStream events(&res);
  auto snapshot = [&](JsonWriter* w) {
    w->Key("response");
    ResponseObject(w, a, /*final=*/false);
  };
  events.Add(start, "response.created", snapshot);
  events.Add(start, "response.in_progress", snapshot);
  int64_t at = ttft;
  size_t step = 0;
  auto advance = [&] {
    if (step++ > 0) at += TokenGap(options_, ctx, rng);
  };
  if (a.choice.calls.empty()) {
    const std::string& item_id = a.message_id;
    auto where = [&](JsonWriter* w) {
      w->Key("item_id");
      WriteString(w, item_id);
      w->Key("output_index");
      w->Int(0);
      w->Key("content_index");
      w->Int(0);
    };
    events.Add(at, "response.output_item.added", [&](JsonWriter* w) {
      w->Key("output_index");
      w->Int(0);
      w->Key("item");
      MessageItem(w, a, /*done=*/false);
    });
    events.Add(at, "response.content_part.added", [&](JsonWriter* w) {
      where(w);
      w->Key("part");
      OutputTextPart(w, a, /*done=*/false);
    });
    const size_t tokens = a.choice.tokens.size();
    for (size_t t = 0; t < tokens; ++t) {
      advance();
      events.Add(at, "response.output_text.delta", [&](JsonWriter* w) {
        where(w);
        w->Key("delta");
        WriteString(w, a.choice.tokens[t]);
        Logprobs(w, a, t, t + 1);
      });
    }
    events.Add(at, "response.output_text.done", [&](JsonWriter* w) {
      where(w);
      w->Key("text");
      WriteString(w, a.choice.Text());
      Logprobs(w, a, 0, tokens);
    });
    events.Add(at, "response.content_part.done", [&](JsonWriter* w) {
      where(w);
      w->Key("part");
      OutputTextPart(w, a, /*done=*/true);
    });
    events.Add(at, "response.output_item.done", [&](JsonWriter* w) {
      w->Key("output_index");
      w->Int(0);
      w->Key("item");
      MessageItem(w, a, /*done=*/true);
    });
  } else {
    for (size_t k = 0; k < a.choice.calls.size(); ++k) {
      const PlannedCall& call = a.choice.calls[k];
      const std::string& item_id = a.call_item_ids[k];
      auto where = [&](JsonWriter* w) {
        w->Key("item_id");
        WriteString(w, item_id);
        w->Key("output_index");
        w->Uint64(k);
      };
      advance();
      events.Add(at, "response.output_item.added", [&](JsonWriter* w) {
        w->Key("output_index");
        w->Uint64(k);
        w->Key("item");
        FunctionCallItem(w, a, k, /*done=*/false);
      });
      for (const std::string& fragment : call.fragments) {
        advance();
        events.Add(at, "response.function_call_arguments.delta",
                   [&](JsonWriter* w) {
                     where(w);
                     w->Key("delta");
                     WriteString(w, fragment);
                   });
      }
      events.Add(at, "response.function_call_arguments.done",
                 [&](JsonWriter* w) {
                   where(w);
                   w->Key("name");
                   WriteString(w, call.name);
                   w->Key("arguments");
                   WriteString(w, call.arguments);
                 });
      events.Add(at, "response.output_item.done", [&](JsonWriter* w) {
        w->Key("output_index");
        w->Uint64(k);
        w->Key("item");
        FunctionCallItem(w, a, k, /*done=*/true);
      });
    }
  }
  events.Add(at, a.incomplete() ? "response.incomplete" : "response.completed",
             [&](JsonWriter* w) {
               w->Key("response");
               ResponseObject(w, a, /*final=*/true);
             });
  BreakStream(fault, options_,
              "event: response.output_text.delta\ndata: "
              "{\"type\":\"response.output_text."
              "delta\",\x01\n\n",
              rng, &plan);
  return plan;
}

}  // namespace rwd

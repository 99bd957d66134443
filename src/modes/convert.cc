#include "modes/convert.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>
#include <optional>

#include "rewind/synth.h"

namespace rwd {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

Status Bad(const std::string& why) { return Status::InvalidArgument(why); }

void Str(Writer* w, const std::string& s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::string Text(const rapidjson::StringBuffer& b) {
  return std::string(b.GetString(), b.GetSize());
}

bool Parse(const std::string& text, rapidjson::Document* d) {
  d->Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  return !d->HasParseError() && d->IsObject();
}

std::string Member(const rapidjson::Value& v, const char* name) {
  auto it = v.FindMember(name);
  return it != v.MemberEnd() && it->value.IsString()
             ? std::string(it->value.GetString(), it->value.GetStringLength())
             : std::string();
}

bool Encoded(const Response& r) {
  const std::string e = FindHeader(r.headers, "Content-Encoding");
  return !e.empty() && e != "identity";
}

// The recorded headers for the other framing: the body's own description
// (type, length, encoding, caching of a stream) replaced.
HeaderList Headers(const Response& r, const std::string& content_type,
                   bool stream) {
  HeaderList out;
  for (const auto& [name, value] : r.headers) {
    if (HeaderNameEquals(name, "Content-Type") ||
        HeaderNameEquals(name, "Content-Length") ||
        HeaderNameEquals(name, "Transfer-Encoding") ||
        HeaderNameEquals(name, "Cache-Control")) {
      continue;
    }
    out.emplace_back(name, value);
  }
  out.emplace_back("Content-Type", content_type);
  if (stream) out.emplace_back("Cache-Control", "no-cache");
  return out;
}

// The members every object of an answer starts with, copied from "from".
struct Head {
  std::string id;
  std::optional<int64_t> created;
  std::string model;
  std::string system_fingerprint;
  std::string service_tier;

  void Take(const rapidjson::Value& v) {
    if (id.empty()) id = Member(v, "id");
    if (model.empty()) model = Member(v, "model");
    if (system_fingerprint.empty())
      system_fingerprint = Member(v, "system_fingerprint");
    if (service_tier.empty()) service_tier = Member(v, "service_tier");
    auto c = v.FindMember("created");
    if (!created && c != v.MemberEnd() && c->value.IsInt64())
      created = c->value.GetInt64();
  }
  void Write(Writer* w, const char* object) const {
    w->Key("id");
    Str(w, id);
    w->Key("object");
    w->String(object);
    w->Key("created");
    w->Int64(created.value_or(0));
    w->Key("model");
    Str(w, model);
    if (!system_fingerprint.empty()) {
      w->Key("system_fingerprint");
      Str(w, system_fingerprint);
    }
    if (!service_tier.empty()) {
      w->Key("service_tier");
      Str(w, service_tier);
    }
  }
};

// Pieces of about eight bytes, never inside a UTF-8 sequence.
std::vector<std::string> Pieces(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t end = std::min(s.size(), i + 8);
    while (end < s.size() &&
           (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80)
      ++end;
    out.push_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}

}  // namespace

StreamRequest StreamRequest::Of(const std::string& body) {
  StreamRequest r;
  rapidjson::Document d;
  if (!Parse(body, &d)) return r;
  auto s = d.FindMember("stream");
  r.stream = s != d.MemberEnd() && s->value.IsBool() && s->value.GetBool();
  auto o = d.FindMember("stream_options");
  if (o != d.MemberEnd() && o->value.IsObject()) {
    auto u = o->value.FindMember("include_usage");
    r.include_usage =
        u != o->value.MemberEnd() && u->value.IsBool() && u->value.GetBool();
  }
  return r;
}

bool IsEventStream(const Response& r) {
  return FindHeader(r.headers, "Content-Type").find("text/event-stream") !=
         std::string::npos;
}

Result<Response> StreamToCompletion(const Response& stream, bool chat) {
  if (Encoded(stream)) return Bad("the recorded stream is encoded");
  struct Tool {
    std::string id, type, name, arguments;
  };
  struct Choice {
    std::string role;
    std::string content;
    bool has_content = false;
    std::optional<std::string> refusal;
    std::map<int, Tool> tools;
    std::string finish_reason;
    rapidjson::Value logprobs;  // merged; null when none came
  };
  rapidjson::Document keep;  // owns the merged values
  auto& alloc = keep.GetAllocator();
  std::map<int, Choice> choices;
  Head head;
  rapidjson::Value usage;
  int events = 0;
  const std::string body = stream.Body();
  const char* kind = chat ? "chat.completion.chunk" : "text_completion";
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    std::string line = body.substr(at, end - at);
    at = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data:", 0) != 0) continue;
    std::string data = line.substr(5);
    if (!data.empty() && data[0] == ' ') data.erase(0, 1);
    if (data == "[DONE]") continue;
    rapidjson::Document d;
    if (!Parse(data, &d) || Member(d, "object") != kind) {
      return Bad(std::string("an event of the recorded stream is not a ") +
                 kind);
    }
    ++events;
    head.Take(d);
    if (auto u = d.FindMember("usage");
        u != d.MemberEnd() && u->value.IsObject()) {
      usage.CopyFrom(u->value, alloc);
    }
    auto cs = d.FindMember("choices");
    if (cs == d.MemberEnd() || !cs->value.IsArray()) continue;
    for (const auto& c : cs->value.GetArray()) {
      if (!c.IsObject()) continue;
      auto idx = c.FindMember("index");
      Choice& ch = choices[idx != c.MemberEnd() && idx->value.IsInt()
                               ? idx->value.GetInt()
                               : 0];
      if (!chat) {
        ch.content += Member(c, "text");
      } else if (auto dl = c.FindMember("delta");
                 dl != c.MemberEnd() && dl->value.IsObject()) {
        const auto& delta = dl->value;
        if (ch.role.empty()) ch.role = Member(delta, "role");
        if (auto t = delta.FindMember("content");
            t != delta.MemberEnd() && t->value.IsString()) {
          ch.content += t->value.GetString();
          ch.has_content = true;
        }
        if (auto r = delta.FindMember("refusal");
            r != delta.MemberEnd() && r->value.IsString()) {
          ch.refusal = ch.refusal.value_or("") + r->value.GetString();
        }
        if (auto tc = delta.FindMember("tool_calls");
            tc != delta.MemberEnd() && tc->value.IsArray()) {
          for (const auto& t : tc->value.GetArray()) {
            if (!t.IsObject()) continue;
            auto ti = t.FindMember("index");
            Tool& tool = ch.tools[ti != t.MemberEnd() && ti->value.IsInt()
                                      ? ti->value.GetInt()
                                      : 0];
            if (tool.id.empty()) tool.id = Member(t, "id");
            if (tool.type.empty()) tool.type = Member(t, "type");
            if (auto fn = t.FindMember("function");
                fn != t.MemberEnd() && fn->value.IsObject()) {
              tool.name += Member(fn->value, "name");
              tool.arguments += Member(fn->value, "arguments");
            }
          }
        }
      }
      if (auto f = c.FindMember("finish_reason");
          f != c.MemberEnd() && f->value.IsString()) {
        ch.finish_reason = f->value.GetString();
      }
      // Logprobs: every array member appended to the choice's own.
      if (auto lp = c.FindMember("logprobs");
          lp != c.MemberEnd() && lp->value.IsObject()) {
        if (!ch.logprobs.IsObject()) ch.logprobs.SetObject();
        for (const auto& m : lp->value.GetObject()) {
          if (!m.value.IsArray()) continue;
          auto mine = ch.logprobs.FindMember(m.name);
          if (mine == ch.logprobs.MemberEnd()) {
            ch.logprobs.AddMember(rapidjson::Value(m.name, alloc),
                                  rapidjson::Value(rapidjson::kArrayType),
                                  alloc);
            mine = ch.logprobs.FindMember(m.name);
          }
          for (const auto& e : m.value.GetArray()) {
            mine->value.PushBack(rapidjson::Value(e, alloc), alloc);
          }
        }
      }
    }
  }
  if (events == 0) return Bad("the recorded stream holds no events");

  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  head.Write(&w, chat ? "chat.completion" : "text_completion");
  w.Key("choices");
  w.StartArray();
  for (auto& [index, ch] : choices) {
    w.StartObject();
    w.Key("index");
    w.Int(index);
    if (chat) {
      w.Key("message");
      w.StartObject();
      w.Key("role");
      Str(&w, ch.role.empty() ? "assistant" : ch.role);
      w.Key("content");
      if (ch.has_content || ch.tools.empty()) {
        Str(&w, ch.content);
      } else {
        w.Null();
      }
      if (ch.refusal) {
        w.Key("refusal");
        Str(&w, *ch.refusal);
      }
      if (!ch.tools.empty()) {
        w.Key("tool_calls");
        w.StartArray();
        for (const auto& [ti, tool] : ch.tools) {
          w.StartObject();
          w.Key("id");
          Str(&w, tool.id);
          w.Key("type");
          Str(&w, tool.type.empty() ? "function" : tool.type);
          w.Key("function");
          w.StartObject();
          w.Key("name");
          Str(&w, tool.name);
          w.Key("arguments");
          Str(&w, tool.arguments);
          w.EndObject();
          w.EndObject();
        }
        w.EndArray();
      }
      w.EndObject();
    } else {
      w.Key("text");
      Str(&w, ch.content);
    }
    w.Key("logprobs");
    ch.logprobs.Accept(w);
    w.Key("finish_reason");
    if (ch.finish_reason.empty()) {
      w.Null();
    } else {
      Str(&w, ch.finish_reason);
    }
    w.EndObject();
  }
  w.EndArray();
  if (usage.IsObject()) {
    w.Key("usage");
    usage.Accept(w);
  }
  w.EndObject();

  Response out;
  out.status = stream.status;
  out.headers = Headers(stream, "application/json", false);
  out.chunked = false;
  out.headers_us = stream.TotalMicros();
  out.chunks = {{out.headers_us, Text(b)}};
  // Its offsets count from the same receipt as the stream's.
  out.own_before_us = stream.own_before_us;
  out.own_after_us = stream.own_after_us;
  return out;
}

Result<Response> CompletionToStream(const Response& completion, bool chat,
                                    bool include_usage) {
  if (Encoded(completion)) return Bad("the recorded answer is encoded");
  rapidjson::Document d;
  const char* kind = chat ? "chat.completion" : "text_completion";
  if (!Parse(completion.Body(), &d) || Member(d, "object") != kind) {
    return Bad(std::string("the recorded answer is not a ") + kind);
  }
  auto cs = d.FindMember("choices");
  if (cs == d.MemberEnd() || !cs->value.IsArray()) {
    return Bad("the recorded answer has no choices");
  }
  Head head;
  head.Take(d);
  const char* chunk_object = chat ? "chat.completion.chunk" : "text_completion";

  // Per choice: its deltas in order (JSON text of "delta", or for
  // completions of "text"), then its finish reason.
  struct Plan {
    int index = 0;
    std::vector<std::string> deltas;
    std::string finish;  // "" = null
  };
  std::vector<Plan> plans;
  for (const auto& c : cs->value.GetArray()) {
    if (!c.IsObject()) continue;
    Plan p;
    auto idx = c.FindMember("index");
    p.index =
        idx != c.MemberEnd() && idx->value.IsInt() ? idx->value.GetInt() : 0;
    p.finish = Member(c, "finish_reason");
    auto delta = [](auto fill) {
      rapidjson::StringBuffer b;
      Writer w(b);
      w.StartObject();
      fill(&w);
      w.EndObject();
      return Text(b);
    };
    if (!chat) {
      for (const std::string& t : Tokenize(Member(c, "text")))
        p.deltas.push_back(t);
      plans.push_back(std::move(p));
      continue;
    }
    auto m = c.FindMember("message");
    if (m == c.MemberEnd() || !m->value.IsObject())
      return Bad("a choice has no message");
    const auto& msg = m->value;
    const std::string role =
        Member(msg, "role").empty() ? "assistant" : Member(msg, "role");
    // As OpenAI streams it: content "" to start a text, null before tool
    // calls without one.
    auto content = msg.FindMember("content");
    const bool has_text =
        content != msg.MemberEnd() && content->value.IsString();
    p.deltas.push_back(delta([&](Writer* w) {
      w->Key("role");
      Str(w, role);
      w->Key("content");
      if (has_text) {
        w->String("");
      } else {
        w->Null();
      }
    }));
    for (const std::string& t : Tokenize(Member(msg, "content"))) {
      p.deltas.push_back(delta([&](Writer* w) {
        w->Key("content");
        Str(w, t);
      }));
    }
    if (const std::string refusal = Member(msg, "refusal"); !refusal.empty()) {
      p.deltas.push_back(delta([&](Writer* w) {
        w->Key("refusal");
        Str(w, refusal);
      }));
    }
    if (auto tc = msg.FindMember("tool_calls");
        tc != msg.MemberEnd() && tc->value.IsArray()) {
      int ti = 0;
      for (const auto& t : tc->value.GetArray()) {
        if (!t.IsObject()) continue;
        const rapidjson::Value* fn = nullptr;
        if (auto f = t.FindMember("function");
            f != t.MemberEnd() && f->value.IsObject()) {
          fn = &f->value;
        }
        const std::string name = fn ? Member(*fn, "name") : "";
        const std::string args = fn ? Member(*fn, "arguments") : "";
        auto tool_delta = [&](bool first, const std::string& piece) {
          return delta([&](Writer* w) {
            w->Key("tool_calls");
            w->StartArray();
            w->StartObject();
            w->Key("index");
            w->Int(ti);
            if (first) {
              w->Key("id");
              Str(w, Member(t, "id"));
              w->Key("type");
              Str(w,
                  Member(t, "type").empty() ? "function" : Member(t, "type"));
            }
            w->Key("function");
            w->StartObject();
            if (first) {
              w->Key("name");
              Str(w, name);
            }
            w->Key("arguments");
            Str(w, piece);
            w->EndObject();
            w->EndObject();
            w->EndArray();
          });
        };
        p.deltas.push_back(tool_delta(true, ""));
        for (const std::string& piece : Pieces(args))
          p.deltas.push_back(tool_delta(false, piece));
        ++ti;
      }
    }
    plans.push_back(std::move(p));
  }
  if (plans.empty()) return Bad("the recorded answer has no choices");

  auto event = [&](int index, const std::string* delta, const std::string* text,
                   const std::string* finish) {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    head.Write(&w, chunk_object);
    w.Key("choices");
    w.StartArray();
    w.StartObject();
    w.Key("index");
    w.Int(index);
    if (chat) {
      w.Key("delta");
      if (delta) {
        w.RawValue(delta->data(), delta->size(), rapidjson::kObjectType);
      } else {
        w.StartObject();
        w.EndObject();
      }
    } else {
      w.Key("text");
      Str(&w, text ? *text : std::string());
    }
    w.Key("logprobs");
    w.Null();
    w.Key("finish_reason");
    if (finish && !finish->empty()) {
      Str(&w, *finish);
    } else {
      w.Null();
    }
    w.EndObject();
    w.EndArray();
    w.EndObject();
    return "data: " + Text(b) + "\n\n";
  };

  // Step j of every choice at total * (j + 1) / steps: the last byte when
  // the recorded answer's arrived.
  size_t steps = 1;
  for (const Plan& p : plans) steps = std::max(steps, p.deltas.size());
  const int64_t total = completion.TotalMicros();
  auto when = [&](size_t j) {
    return static_cast<int64_t>(static_cast<double>(total) *
                                static_cast<double>(j + 1) /
                                static_cast<double>(steps));
  };
  Response out;
  out.status = completion.status;
  out.headers = Headers(completion, "text/event-stream", true);
  out.chunked = true;
  out.headers_us = when(0);
  // Its offsets count from the same receipt as the completion's.
  out.own_before_us = completion.own_before_us;
  out.own_after_us = completion.own_after_us;
  for (size_t j = 0; j < steps; ++j) {
    for (const Plan& p : plans) {
      if (j >= p.deltas.size()) continue;
      out.chunks.push_back(
          {when(j), chat ? event(p.index, &p.deltas[j], nullptr, nullptr)
                         : event(p.index, nullptr, &p.deltas[j], nullptr)});
    }
  }
  for (const Plan& p : plans) {
    out.chunks.push_back({total, event(p.index, nullptr, nullptr, &p.finish)});
  }
  if (auto u = d.FindMember("usage");
      include_usage && u != d.MemberEnd() && u->value.IsObject()) {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    head.Write(&w, chunk_object);
    w.Key("choices");
    w.StartArray();
    w.EndArray();
    w.Key("usage");
    u->value.Accept(w);
    w.EndObject();
    out.chunks.push_back({total, "data: " + Text(b) + "\n\n"});
  }
  out.chunks.push_back({total, "data: [DONE]\n\n"});
  return out;
}

}  // namespace rwd

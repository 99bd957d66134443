// POST /v1/embeddings: seeded, deterministic unit vectors.
//
// An input's vector depends on --seed, the model and the input alone (not
// on how often it was asked), so the same input always gets the same
// vector. Its components are standard normal draws from a generator seeded
// by a hash of those, scaled to length 1; a vector of D dimensions is the
// first D draws, so a shorter one is a longer one cut and renormalized.
#include <xxhash.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "synth/engine_util.h"
#include "util/base64.h"

namespace rwd {
namespace {

constexpr int kMaxDimensions = 65536;
constexpr size_t kMaxInputs = 2048;
// Numbers in one answer at most (2,048 inputs of 4,096 dimensions).
constexpr size_t kMaxNumbers = 2048 * 4096;

// The inputs of a request: strings, or token id lists written as text.
struct Input {
  std::string text;  // what the vector is drawn from
  int tokens = 0;
};

Status ReadInputs(const rapidjson::Value& input, std::vector<Input>* out) {
  auto ids = [](const rapidjson::Value& list, Input* in) {
    in->text = "\x01ids:";
    for (const auto& id : list.GetArray()) {
      if (!id.IsInt64()) return false;
      in->text += std::to_string(id.GetInt64()) + ",";
      ++in->tokens;
    }
    return true;
  };
  const char* kShape =
      "'input' must be a string, an array of strings, an array of token ids or "
      "an array of "
      "token id arrays";
  if (input.IsString()) {
    Input in;
    in.text.assign(input.GetString(), input.GetStringLength());
    in.tokens = static_cast<int>(Tokenize(in.text).size());
    out->push_back(std::move(in));
  } else if (input.IsArray() && !input.Empty() && input[0].IsNumber()) {
    Input in;
    if (!ids(input, &in)) return Status::InvalidArgument(kShape);
    out->push_back(std::move(in));
  } else if (input.IsArray() && !input.Empty()) {
    for (const auto& item : input.GetArray()) {
      Input in;
      if (item.IsString()) {
        in.text.assign(item.GetString(), item.GetStringLength());
        in.tokens = static_cast<int>(Tokenize(in.text).size());
      } else if (!item.IsArray() || item.Empty() || !ids(item, &in)) {
        return Status::InvalidArgument(kShape);
      }
      out->push_back(std::move(in));
    }
  } else {
    return Status::InvalidArgument(kShape);
  }
  if (out->size() > kMaxInputs) {
    return Status::InvalidArgument("'input' holds more than " +
                                   std::to_string(kMaxInputs) + " items");
  }
  return Status::Ok();
}

std::vector<float> Embed(uint64_t seed, const std::string& model,
                         const std::string& text, int dimensions) {
  std::string keyed = model;
  keyed += '\0';
  keyed += text;
  std::mt19937_64 rng(XXH64(keyed.data(), keyed.size(), seed));
  std::normal_distribution<double> normal(0, 1);
  std::vector<double> v(static_cast<size_t>(dimensions));
  double norm = 0;
  for (double& x : v) {
    x = normal(rng);
    norm += x * x;
  }
  norm = std::sqrt(norm);
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = static_cast<float>(v[i] / norm);
  return out;
}

}  // namespace

SynthPlan Synthesizer::PlanEmbeddings(const Request& http,
                                      const SynthContext& ctx) const {
  const int64_t start = ctx.admitted_us;
  auto bad = [&](const std::string& message) {
    return ErrorPlan(400, message, "invalid_request_error", "", start);
  };
  if (Status s = CheckRequestDepth(http.body); !s.ok()) return bad(s.message());
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(http.body.data(), http.body.size());
  if (d.HasParseError() || !d.IsObject())
    return bad("the request body is not a JSON object");
  std::string asked;
  if (auto m = d.FindMember("model");
      m != d.MemberEnd() && !m->value.IsNull()) {
    if (!m->value.IsString()) return bad("'model' must be a string");
    asked = m->value.GetString();
  }
  auto input = d.FindMember("input");
  if (input == d.MemberEnd()) return bad("'input' is required");
  std::vector<Input> inputs;
  if (Status s = ReadInputs(input->value, &inputs); !s.ok())
    return bad(s.message());
  int dimensions = options_.embedding_dimensions;
  if (auto m = d.FindMember("dimensions");
      m != d.MemberEnd() && !m->value.IsNull()) {
    if (!m->value.IsInt() || m->value.GetInt() < 1 ||
        m->value.GetInt() > kMaxDimensions) {
      return bad("'dimensions' must be an integer from 1 to " +
                 std::to_string(kMaxDimensions));
    }
    dimensions = m->value.GetInt();
  }
  bool base64 = false;
  if (auto m = d.FindMember("encoding_format");
      m != d.MemberEnd() && !m->value.IsNull()) {
    const std::string f = m->value.IsString() ? m->value.GetString() : "";
    if (f != "float" && f != "base64")
      return bad("'encoding_format' must be float or base64");
    base64 = f == "base64";
  }
  if (inputs.size() * static_cast<size_t>(dimensions) > kMaxNumbers) {
    return bad("'input' items x 'dimensions' is over " +
               std::to_string(kMaxNumbers));
  }
  const std::optional<std::string> model = ServedModel(options_, asked);
  if (!model) return UnknownModelPlan(asked, start);
  int prompt_tokens = 0;
  for (const Input& in : inputs) prompt_tokens += in.tokens;

  std::mt19937_64 rng(ctx.seed);
  const FaultType fault = DrawFault(options_, ctx, rng);
  if (std::optional<SynthPlan> failed =
          ErrorFaultPlan(fault, options_, start)) {
    failed->prompt_tokens = prompt_tokens;
    return std::move(*failed);
  }
  // Time to the whole answer: the prefill only (there is no decoding).
  const int64_t at = FirstTokenAt(options_, ctx, prompt_tokens, rng);

  std::string body = "{\"object\":\"list\",\"data\":[";
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<float> v =
        Embed(options_.seed, *model, inputs[i].text, dimensions);
    if (i) body += ',';
    body += "{\"object\":\"embedding\",\"index\":" + std::to_string(i) +
            ",\"embedding\":";
    if (base64) {
      std::string bytes(v.size() * 4, '\0');
      for (size_t k = 0; k < v.size(); ++k) {
        uint32_t bits;
        std::memcpy(&bits, &v[k], 4);
        for (int j = 0; j < 4; ++j)
          bytes[k * 4 + j] = static_cast<char>(bits >> (8 * j));
      }
      body += '"' + Base64Encode(bytes) + '"';
    } else {
      body += '[';
      char buf[32];
      for (size_t k = 0; k < v.size(); ++k) {
        if (k) body += ',';
        // Nine significant digits: the float32 read back exactly.
        std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(v[k]));
        body += buf;
      }
      body += ']';
    }
    body += '}';
  }
  rapidjson::StringBuffer tail;
  JsonWriter w(tail);
  w.StartObject();
  w.Key("model");
  WriteString(&w, *model);
  w.Key("usage");
  w.StartObject();
  w.Key("prompt_tokens");
  w.Int(prompt_tokens);
  w.Key("total_tokens");
  w.Int(prompt_tokens);
  w.EndObject();
  w.EndObject();
  // {"model":..,"usage":..} joined after the data array.
  body += "]," + TakeJson(&tail).substr(1);

  SynthPlan plan;
  plan.response.status = 200;
  plan.prompt_tokens = prompt_tokens;
  plan.fault = fault;
  SetBody(std::move(body), at, fault, options_, &plan);
  return plan;
}

}  // namespace rwd

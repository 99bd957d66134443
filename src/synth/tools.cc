#include "synth/tools.h"

#include <string>

#include "synth/engine_util.h"
#include "synth/json_schema_gen.h"

namespace rwd {
namespace {

const rapidjson::Value* Member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto m = v.FindMember(name);
  return m == v.MemberEnd() ? nullptr : &m->value;
}

}  // namespace

Status ParseTools(const rapidjson::Value& tools, bool responses_shape,
                  OpenAIRequest* request) {
  if (tools.IsNull()) return Status::Ok();
  if (!tools.IsArray())
    return Status::InvalidArgument("'tools' must be an array");
  for (const auto& tool : tools.GetArray()) {
    if (!tool.IsObject())
      return Status::InvalidArgument("each tool must be an object");
    const rapidjson::Value* type = Member(tool, "type");
    if (type != nullptr &&
        (!type->IsString() || std::string(type->GetString()) != "function")) {
      continue;  // a built-in or custom tool: never called by the engine
    }
    const rapidjson::Value* def =
        responses_shape ? &tool : Member(tool, "function");
    if (def == nullptr || !def->IsObject()) {
      return Status::InvalidArgument(
          "each function tool needs a 'function' object");
    }
    const rapidjson::Value* name = Member(*def, "name");
    if (name == nullptr || !name->IsString() || name->GetStringLength() == 0) {
      return Status::InvalidArgument(
          "each function tool needs a string 'name'");
    }
    ToolSpec spec;
    spec.name = name->GetString();
    if (const rapidjson::Value* p = Member(*def, "parameters");
        p && !p->IsNull()) {
      spec.parameters = CompactJson(*p);
      Result<JsonSchemaGenerator> g =
          JsonSchemaGenerator::Create(spec.parameters);
      if (!g.ok()) {
        return Status::InvalidArgument(
            "tool '" + spec.name + "': 'parameters': " + g.status().message());
      }
    }
    request->tools.push_back(std::move(spec));
  }
  return Status::Ok();
}

Status ParseToolChoice(const rapidjson::Value& choice, OpenAIRequest* request) {
  using Choice = OpenAIRequest::ToolChoice;
  if (choice.IsNull()) return Status::Ok();
  if (choice.IsString()) {
    const std::string c = choice.GetString();
    if (c == "auto") {
      request->tool_choice = Choice::kAuto;
    } else if (c == "none") {
      request->tool_choice = Choice::kNone;
    } else if (c == "required") {
      request->tool_choice = Choice::kRequired;
    } else {
      return Status::InvalidArgument(
          "'tool_choice' must be \"auto\", \"none\", \"required\" "
          "or a function");
    }
  } else if (choice.IsObject()) {
    const rapidjson::Value* type = Member(choice, "type");
    if (type == nullptr || !type->IsString() ||
        std::string(type->GetString()) != "function") {
      return Status::Ok();  // allowed_tools, a built-in tool: as auto
    }
    const rapidjson::Value* fn = Member(choice, "function");
    const rapidjson::Value* name =
        fn ? Member(*fn, "name") : Member(choice, "name");
    if (name == nullptr || !name->IsString()) {
      return Status::InvalidArgument("'tool_choice' names no function");
    }
    request->tool_choice = Choice::kFunction;
    request->tool_choice_name = name->GetString();
  } else {
    return Status::InvalidArgument(
        "'tool_choice' must be a string or an object");
  }
  if (request->tool_choice == Choice::kRequired && request->tools.empty()) {
    return Status::InvalidArgument(
        "'tool_choice' is \"required\" but there are no 'tools'");
  }
  if (request->tool_choice == Choice::kFunction) {
    for (const ToolSpec& t : request->tools) {
      if (t.name == request->tool_choice_name) return Status::Ok();
    }
    return Status::InvalidArgument("'tool_choice' names function '" +
                                   request->tool_choice_name +
                                   "', which is not among 'tools'");
  }
  return Status::Ok();
}

std::vector<ToolCall> ChooseToolCalls(const OpenAIRequest& r,
                                      const SynthOptions& options,
                                      std::mt19937_64& rng) {
  using Choice = OpenAIRequest::ToolChoice;
  if (r.tools.empty() || r.tool_choice == Choice::kNone) return {};
  if (r.tool_choice == Choice::kAuto && r.after_tool_result) return {};
  std::vector<ToolCall> calls;
  if (options.output.RuleToolCalls(r, &calls)) return calls;
  if (r.tool_choice == Choice::kAuto &&
      std::uniform_real_distribution<double>(0, 1)(rng) >= options.tool_rate) {
    return {};
  }
  const ToolSpec* tool = nullptr;
  if (r.tool_choice == Choice::kFunction) {
    for (const ToolSpec& t : r.tools) {
      if (t.name == r.tool_choice_name) tool = &t;
    }
  }
  if (tool == nullptr) {
    tool = &r.tools[std::uniform_int_distribution<size_t>(
        0, r.tools.size() - 1)(rng)];
  }
  ToolCall call;
  call.name = tool->name;
  call.arguments = "{}";
  if (!tool->parameters.empty()) {
    Result<JsonSchemaGenerator> g =
        JsonSchemaGenerator::Create(tool->parameters);
    if (g.ok()) call.arguments = g->Generate(rng);
  }
  calls.push_back(std::move(call));
  return calls;
}

}  // namespace rwd

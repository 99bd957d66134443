#include "cli/config_file.h"

#include <rapidjson/document.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>

namespace rwd {

void AddConfigOption(CLI::App* cmd) {
  cmd->add_option("--config",
                  "JSON file of flags (keys are flag names without "
                  "the dashes); flags on the command line win");
}

Result<std::vector<std::string>> ExpandConfig(CLI::App& app,
                                              std::vector<std::string> args) {
  if (args.size() < 2) return args;
  auto at = std::find(args.begin(), args.end(), "--config");
  std::string path;
  if (at != args.end()) {
    if (at + 1 == args.end())
      return Status::InvalidArgument("--config needs a FILE");
    path = *(at + 1);
    args.erase(at, at + 2);
  } else {
    for (auto it = args.begin(); it != args.end(); ++it) {
      if (it->rfind("--config=", 0) == 0) {
        path = it->substr(9);
        args.erase(it);
        break;
      }
    }
  }
  if (path.empty()) return args;
  CLI::App* sub = nullptr;
  for (CLI::App* candidate : app.get_subcommands({})) {
    if (candidate->get_name() == args[1]) sub = candidate;
  }
  if (!sub)
    return Status::InvalidArgument(
        "--config goes after a command: rewind COMMAND --config FILE");
  std::ifstream in(path);
  if (!in) return Status::IOError("cannot read config file " + path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::InvalidArgument("config file " + path +
                                   " is not a JSON object");
  }
  std::vector<std::string> from_file;
  for (auto m = doc.MemberBegin(); m != doc.MemberEnd(); ++m) {
    const std::string key = m->name.GetString();
    const std::string flag = "--" + key;
    CLI::Option* opt = sub->get_option_no_throw(flag);
    if (!opt || key == "config") {
      return Status::InvalidArgument(
          "config file " + path + ": unknown key \"" + key + "\" for `rewind " +
          sub->get_name() + "` (keys are its flags without the dashes)");
    }
    const bool on_command_line =
        std::any_of(args.begin(), args.end(), [&](const std::string& a) {
          return a == flag || a.rfind(flag + "=", 0) == 0;
        });
    if (on_command_line) continue;  // the command line wins
    auto scalar = [&](const rapidjson::Value& v) -> Result<std::string> {
      if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
      if (v.IsInt64()) return std::to_string(v.GetInt64());
      if (v.IsUint64()) return std::to_string(v.GetUint64());
      if (v.IsNumber()) {
        std::ostringstream o;
        o << v.GetDouble();
        return o.str();
      }
      return Status::InvalidArgument("config file " + path + ": \"" + key +
                                     "\" must be a string, a number, a boolean "
                                     "or a list of those");
    };
    if (m->value.IsBool()) {
      if (opt->get_expected_min() != 0) {
        return Status::InvalidArgument("config file " + path + ": \"" + key +
                                       "\" takes a value, not true/false");
      }
      if (m->value.GetBool()) from_file.push_back(flag);
    } else if (m->value.IsArray()) {
      for (const auto& item : m->value.GetArray()) {
        Result<std::string> v = scalar(item);
        if (!v.ok()) return v.status();
        from_file.push_back(flag);
        from_file.push_back(v.value());
      }
    } else {
      Result<std::string> v = scalar(m->value);
      if (!v.ok()) return v.status();
      from_file.push_back(flag);
      from_file.push_back(v.value());
    }
  }
  args.insert(args.begin() + 2, from_file.begin(), from_file.end());
  return args;
}

}  // namespace rwd

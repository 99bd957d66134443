#include "cli/matching_flags.h"

#include <CLI/CLI.hpp>

namespace rwd {
namespace {

std::string NormalizeHelp() {
  std::string ready;
  for (const ReadyMadeNormalizer& r : ReadyMadeNormalizers()) {
    std::string becomes = r.replacement;
    if (becomes.rfind("\\1", 0) == 0) becomes.erase(0, 2);  // hex-id's prefix
    ready += std::string("\n  ") + r.name + " -> " + becomes + ": " + r.help;
  }
  return "Rewrite string values in JSON request bodies before keying, so "
         "a value that changes every run still matches (repeatable, "
         "applied in order, stored with the recording): a ready-made "
         "normalizer or REGEX=>REPLACEMENT (RE2 syntax; \\1 a group). "
         "PATH: before either limits it to the strings at or under a "
         "dotted JSON path, * for any member or array index, e.g. "
         "--normalize date  --normalize 'messages.*.content:"
         "\\d{4}-\\d{2}-\\d{2}=><date>'. Ready-made:" +
         ready;
}

}  // namespace

void AddMatchingFlags(CLI::App* cmd, MatchingFlags* f) {
  cmd->add_option("--normalize", f->normalize, NormalizeHelp())
      ->type_name("[PATH:]NAME|REGEX=>TEXT")
      ->check(CLI::Validator(
          [](std::string& spec) -> std::string {
            Result<Normalizer> n = Normalizer::Parse(spec);
            return n.ok() ? std::string()
                          : "'" + spec + "': " + n.status().message();
          },
          "", "normalizer"));
  CLI::Option* on = cmd->add_flag_callback(
      "--content-equivalence",
      [f] {
        f->content_equivalence = true;
        f->content_given = true;
      },
      "Key a message's content given as one text part "
      "([{\"type\":\"text\",\"text\":T}] in messages[i].content) as the "
      "string T, as OpenAI and Anthropic treat them (the default)");
  CLI::Option* off = cmd->add_flag_callback(
      "--no-content-equivalence",
      [f] {
        f->content_equivalence = false;
        f->content_given = true;
      },
      "Key a string content and the same text as one text part apart");
  on->excludes(off);
  CLI::Option* sets = cmd->add_flag_callback(
      "--tool-sets",
      [f] {
        f->tool_sets = true;
        f->tools_given = true;
      },
      "Key the tools offered (the body's \"tools\" and \"functions\" "
      "lists, each tool named by \"name\" or \"function.name\") as a "
      "set: ordered by name, so the same tools in another order are the "
      "same request (the default)");
  CLI::Option* lists = cmd->add_flag_callback(
      "--no-tool-sets",
      [f] {
        f->tool_sets = false;
        f->tools_given = true;
      },
      "Key the tools offered in the order they are sent");
  sets->excludes(lists);
}

bool MatchingFlagsGiven(const MatchingFlags& f) {
  return !f.normalize.empty() || f.content_given || f.tools_given;
}

Status ApplyMatchingFlags(const MatchingFlags& f, KeyRules* rules) {
  rules->normalizers.clear();
  for (const std::string& spec : f.normalize) {
    Result<Normalizer> n = Normalizer::Parse(spec);
    if (!n.ok()) {
      return Status::InvalidArgument("--normalize '" + spec +
                                     "': " + n.status().message());
    }
    rules->normalizers.push_back(n.value());
  }
  rules->content_equivalence = f.content_equivalence;
  rules->tool_sets = f.tool_sets;
  return Status::Ok();
}

}  // namespace rwd

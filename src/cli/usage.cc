#include "cli/usage.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace rwd {
namespace {

std::string Joined(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

std::string Folded(const std::string& word) {
  std::string out =
      word.substr(std::min(word.find_first_not_of('-'), word.size()));
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The directory "path" would be created in ("." for a bare name).
std::string ParentOf(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

Status CheckDirectory(const std::string& what, const std::string& path) {
  const std::string dir = ParentOf(path);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return Status::InvalidArgument(what + ": directory " + dir +
                                   " does not exist (make it with mkdir -p " +
                                   dir + ")");
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(what + ": " + dir + " is not a directory");
  }
  return Status::Ok();
}

// A symbolic link whose target does not exist: says so, else Ok.
Status CheckNotDangling(const std::string& what, const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode))
    return Status::Ok();
  if (::stat(path.c_str(), &st) == 0) return Status::Ok();
  std::string target;
  std::error_code ec;
  target = std::filesystem::read_symlink(path, ec).string();
  return Status::InvalidArgument(
      what + " is a symbolic link to " +
      (ec ? std::string("a missing file") : target) +
      ", which does not exist; point the link at a file "
      "or give the file's own path");
}

}  // namespace

size_t EditDistance(const std::string& a, const std::string& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1, 0));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] =
          std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string NearestWord(const std::string& word,
                        const std::vector<std::string>& candidates) {
  const std::string w = Folded(word);
  if (w.empty()) return "";
  const size_t limit = w.size() <= 4 ? 1 : w.size() <= 8 ? 2 : 3;
  std::string best;
  size_t best_distance = limit + 1;
  for (const std::string& c : candidates) {
    const size_t d = EditDistance(w, Folded(c));
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

Status CheckCommandLine(CLI::App& app, const std::vector<std::string>& args) {
  std::vector<std::string> commands;
  for (CLI::App* sub : app.get_subcommands({}))
    commands.push_back(sub->get_name());
  if (args.size() < 2) {
    return Status::InvalidArgument(
        "a command is required: " + Joined(commands) +
        " (rewind --help says what each does)");
  }
  const std::string& first = args[1];
  if (first == "-h" || first == "--help" || first == "--version")
    return Status::Ok();
  CLI::App* sub = nullptr;
  for (CLI::App* candidate : app.get_subcommands({})) {
    if (candidate->get_name() == first) sub = candidate;
  }
  if (sub == nullptr) {
    const bool option = first.rfind('-', 0) == 0;
    std::string message =
        std::string(option ? "unknown option \"" : "unknown command \"") +
        first + "\"";
    if (option)
      message += " (options go after the command: rewind COMMAND --OPTION)";
    const std::string nearest = NearestWord(first, commands);
    message += nearest.empty() ? "; the commands are " + Joined(commands)
                               : "; did you mean `rewind " + nearest + "`?";
    return Status::InvalidArgument(message);
  }
  for (size_t i = 2; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) continue;
    const std::string name = arg.substr(0, arg.find('='));
    const CLI::Option* opt = sub->get_option_no_throw(name);
    if (opt == nullptr) opt = app.get_option_no_throw(name);
    if (opt == nullptr) {
      std::vector<std::string> flags;
      for (const CLI::Option* o : sub->get_options()) {
        for (const std::string& l : o->get_lnames()) flags.push_back("--" + l);
      }
      const std::string nearest = NearestWord(name, flags);
      return Status::InvalidArgument(
          "`rewind " + first + "` has no option " + name +
          (nearest.empty() ? "" : "; did you mean " + nearest + "?") +
          " (rewind " + first + " --help lists its options)");
    }
    // Skip an option's value, which may itself begin with dashes.
    if (arg.find('=') == std::string::npos && opt->get_expected_min() > 0) ++i;
  }
  return Status::Ok();
}

Status CheckRecordingPath(const std::string& path, bool create) {
  const std::string what = "--db " + path;
  if (path.empty())
    return Status::InvalidArgument("--db needs a recording file's path");
  Status s = CheckNotDangling(what, path);
  if (!s.ok()) return s;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument(
          what + " is a directory, not a recording; give a file, e.g. " +
          (path.back() == '/' ? path : path + "/") + "rec.sqlite");
    }
    if (!S_ISREG(st.st_mode)) {
      return Status::InvalidArgument(what + " is not a regular file");
    }
    return Status::Ok();
  }
  if (!create) return Status::Ok();  // the store says there is no recording
  return CheckDirectory(what, path);
}

Status CheckOutputPath(const std::string& flag, const std::string& path) {
  const std::string what = flag + " " + path;
  if (path.empty())
    return Status::InvalidArgument(flag + " needs a file's path");
  Status s = CheckNotDangling(what, path);
  if (!s.ok()) return s;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(what +
                                   " is a directory; give a file's path");
  }
  return CheckDirectory(what, path);
}

Status CheckInputPath(const std::string& flag, const std::string& path) {
  const std::string what = flag + " " + path;
  Status s = CheckNotDangling(what, path);
  if (!s.ok()) return s;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::InvalidArgument(what + ": no such file");
  }
  if (S_ISDIR(st.st_mode))
    return Status::InvalidArgument(what + " is a directory, not a file");
  if (::access(path.c_str(), R_OK) != 0) {
    return Status::InvalidArgument(what + ": cannot read it (" +
                                   std::strerror(errno) + ")");
  }
  return Status::Ok();
}

}  // namespace rwd

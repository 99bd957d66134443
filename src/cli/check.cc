// rewind check: do the recorded requests still get the same answers?
#include <fnmatch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/compare.h"
#include "http/client.h"
#include "util/text.h"

namespace rwd {
namespace {

struct Outcome {
  int64_t id = 0;
  std::string method, path;
  enum Kind { kPassed, kChanged, kFailed } kind = kPassed;
  std::vector<Difference> diffs;
  std::string error;
  double recorded_first_byte_ms = 0, recorded_total_ms = 0;
  double target_first_byte_ms = 0, target_total_ms = 0;
};

double FirstByteMs(const Response& r) {
  return static_cast<double>(r.chunks.empty() ? r.headers_us
                                              : r.chunks.front().offset_us) /
         1000.0;
}

double TotalMs(const Response& r) {
  return static_cast<double>(r.TotalMicros()) / 1000.0;
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(
      v.size() - 1,
      static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

std::string Xml(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        if (c < 0x20 && c != '\n' && c != '\t') {
          out += ' ';  // not allowed in XML 1.0
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

void WriteJunit(const std::string& path, const std::vector<Outcome>& results,
                double seconds, const std::string& target) {
  int failures = 0, errors = 0;
  for (const Outcome& o : results) {
    failures += o.kind == Outcome::kChanged;
    errors += o.kind == Outcome::kFailed;
  }
  std::ofstream f(path);
  f << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
    << "<testsuite name=\"rewind check " << Xml(target) << "\" tests=\""
    << results.size() << "\" failures=\"" << failures << "\" errors=\""
    << errors << "\" time=\"" << std::fixed << std::setprecision(3) << seconds
    << "\">\n";
  for (const Outcome& o : results) {
    f << "  <testcase classname=\"" << Xml(o.method + " " + o.path)
      << "\" name=\"exchange " << o.id << "\" time=\""
      << o.target_total_ms / 1000.0 << "\"";
    if (o.kind == Outcome::kPassed) {
      f << "/>\n";
      continue;
    }
    f << ">\n";
    if (o.kind == Outcome::kFailed) {
      f << "    <error message=\"" << Xml(o.error) << "\"/>\n";
    } else {
      f << "    <failure message=\"" << o.diffs.size() << " difference"
        << (o.diffs.size() == 1 ? "" : "s") << "\">";
      for (const Difference& d : o.diffs)
        f << Xml(d.path + ": " + d.was + " -> " + d.now) << "\n";
      f << "</failure>\n";
    }
    f << "  </testcase>\n";
  }
  f << "</testsuite>\n</testsuites>\n";
}

}  // namespace

int RunCheck(Store* store, const CheckFlags& flags, std::ostream& out,
             std::ostream& err) {
  if (flags.concurrency < 1) {
    err << "rewind: --concurrency must be at least 1\n";
    return kExitError;
  }
  std::vector<ExchangeSummary> rows;
  Status s = store->Scan([&](const ExchangeSummary& e) {
    if (!flags.ids.empty() &&
        std::find(flags.ids.begin(), flags.ids.end(), e.id) == flags.ids.end())
      return;
    if (!flags.path_glob.empty() &&
        fnmatch(flags.path_glob.c_str(), e.path.c_str(), 0) != 0)
      return;
    if (!flags.method.empty() && e.method != flags.method) return;
    if (!e.complete) return;
    if (flags.limit > 0 && static_cast<int64_t>(rows.size()) >= flags.limit)
      return;
    rows.push_back(e);
  });
  if (!s.ok()) {
    err << "rewind: " << s.message() << "\n";
    return kExitError;
  }
  // Probe the options once: a bad target or header fails before any work.
  Result<std::unique_ptr<FetchClient>> probe = FetchClient::Create(
      flags.target, flags.timeout_s, flags.extra_headers, nullptr);
  if (!probe.ok()) {
    err << "rewind: " << probe.status().message() << "\n";
    return kExitError;
  }
  CompareOptions copts;
  copts.ignore_fields = flags.ignore_fields;
  copts.headers = flags.compare_headers;
  copts.float_tolerance = flags.float_tolerance;

  std::vector<Outcome> results(rows.size());
  std::atomic<size_t> next{0}, done{0};
  Progress progress("check", static_cast<int64_t>(rows.size()));
  const auto start = std::chrono::steady_clock::now();
  auto worker = [&] {
    auto client = std::move(FetchClient::Create(flags.target, flags.timeout_s,
                                                flags.extra_headers, nullptr)
                                .value());
    for (size_t i = next++; i < rows.size(); i = next++) {
      Outcome& o = results[i];
      o.id = rows[i].id;
      o.method = rows[i].method;
      o.path = rows[i].path;
      Result<Exchange> e = store->Get(o.id);
      if (!e.ok()) {
        o.kind = Outcome::kFailed;
        o.error = e.status().message();
      } else {
        o.recorded_first_byte_ms = FirstByteMs(e->response);
        o.recorded_total_ms = TotalMs(e->response);
        Result<Response> now = client->Fetch(e->request);
        if (!now.ok()) {
          o.kind = Outcome::kFailed;
          o.error = "no answer: " + now.status().message();
        } else {
          o.target_first_byte_ms = FirstByteMs(now.value());
          o.target_total_ms = TotalMs(now.value());
          o.diffs = CompareResponses(e->response, now.value(), copts);
          o.kind = o.diffs.empty() ? Outcome::kPassed : Outcome::kChanged;
        }
      }
      ++done;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < flags.concurrency; ++t) threads.emplace_back(worker);
  while (done < rows.size()) {
    progress.Update(static_cast<int64_t>(done.load()));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : threads) t.join();
  progress.Update(static_cast<int64_t>(rows.size()));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();

  const char* red = flags.color ? "\033[31m" : "";
  const char* green = flags.color ? "\033[32m" : "";
  const char* yellow = flags.color ? "\033[33m" : "";
  const char* reset = flags.color ? "\033[0m" : "";
  int passed = 0, changed = 0, failed = 0;
  for (const Outcome& o : results) {
    if (o.kind == Outcome::kPassed) {
      ++passed;
      continue;
    }
    if (o.kind == Outcome::kFailed) {
      ++failed;
      out << yellow << "! #" << o.id << " " << o.method << " " << o.path << ": "
          << o.error << reset << "\n";
      continue;
    }
    ++changed;
    out << red << "x #" << o.id << " " << o.method << " " << o.path << reset
        << "\n";
    for (const Difference& d : o.diffs) {
      out << "    " << d.path << ": " << red << d.was << reset << " -> "
          << green << d.now << reset << "\n";
    }
  }
  out << passed << " passed, " << changed << " changed, " << failed
      << " failed to answer (" << rows.size() << " exchanges against "
      << flags.target << " in " << std::fixed << std::setprecision(1) << seconds
      << " s)\n";

  // Timing beside correctness: the target's TTFT and total against the
  // recording, per endpoint.
  std::map<std::string, std::vector<const Outcome*>> by_endpoint;
  for (const Outcome& o : results) {
    if (o.kind != Outcome::kFailed)
      by_endpoint[o.method + " " + o.path].push_back(&o);
  }
  std::ostringstream timing_json;
  timing_json << "[";
  bool first = true;
  for (const auto& [endpoint, list] : by_endpoint) {
    std::vector<double> rt, rtot, tt, ttot;
    for (const Outcome* o : list) {
      rt.push_back(o->recorded_first_byte_ms);
      rtot.push_back(o->recorded_total_ms);
      tt.push_back(o->target_first_byte_ms);
      ttot.push_back(o->target_total_ms);
    }
    auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    out << endpoint << "  (target / recorded, ms)\n"
        << std::setprecision(1) << "  first byte p50 " << Pct(tt, .5) << " / "
        << Pct(rt, .5) << " (" << std::setprecision(2)
        << ratio(Pct(tt, .5), Pct(rt, .5)) << "x)" << std::setprecision(1)
        << "   p99 " << Pct(tt, .99) << " / " << Pct(rt, .99) << " ("
        << std::setprecision(2) << ratio(Pct(tt, .99), Pct(rt, .99)) << "x)\n"
        << std::setprecision(1) << "  total      p50 " << Pct(ttot, .5) << " / "
        << Pct(rtot, .5) << " (" << std::setprecision(2)
        << ratio(Pct(ttot, .5), Pct(rtot, .5)) << "x)" << std::setprecision(1)
        << "   p99 " << Pct(ttot, .99) << " / " << Pct(rtot, .99) << " ("
        << std::setprecision(2) << ratio(Pct(ttot, .99), Pct(rtot, .99))
        << "x)\n";
    timing_json << (first ? "" : ",") << "{\"endpoint\":" << JsonQuote(endpoint)
                << ",\"first_byte_ms\":{\"target_p50\":" << Pct(tt, .5)
                << ",\"recorded_p50\":" << Pct(rt, .5)
                << ",\"target_p99\":" << Pct(tt, .99)
                << ",\"recorded_p99\":" << Pct(rt, .99)
                << "},\"total_ms\":{\"target_p50\":" << Pct(ttot, .5)
                << ",\"recorded_p50\":" << Pct(rtot, .5)
                << ",\"target_p99\":" << Pct(ttot, .99)
                << ",\"recorded_p99\":" << Pct(rtot, .99) << "}}";
    first = false;
  }
  timing_json << "]";

  if (!flags.junit_path.empty())
    WriteJunit(flags.junit_path, results, seconds, flags.target);
  if (!flags.json_path.empty()) {
    std::ofstream f(flags.json_path);
    f << "{\"target\":" << JsonQuote(flags.target) << ",\"passed\":" << passed
      << ",\"changed\":" << changed << ",\"failed\":" << failed
      << ",\"seconds\":" << seconds << ",\"exchanges\":[";
    for (size_t i = 0; i < results.size(); ++i) {
      const Outcome& o = results[i];
      f << (i ? ",\n" : "\n") << "{\"id\":" << o.id
        << ",\"method\":" << JsonQuote(o.method)
        << ",\"path\":" << JsonQuote(o.path) << ",\"result\":\""
        << (o.kind == Outcome::kPassed    ? "passed"
            : o.kind == Outcome::kChanged ? "changed"
                                          : "failed")
        << "\",\"error\":" << JsonQuote(o.error) << ",\"differences\":[";
      for (size_t k = 0; k < o.diffs.size(); ++k) {
        f << (k ? "," : "") << "{\"path\":" << JsonQuote(o.diffs[k].path)
          << ",\"was\":" << JsonQuote(o.diffs[k].was)
          << ",\"now\":" << JsonQuote(o.diffs[k].now) << "}";
      }
      f << "],\"recorded\":{\"first_byte_ms\":" << o.recorded_first_byte_ms
        << ",\"total_ms\":" << o.recorded_total_ms
        << "},\"target\":{\"first_byte_ms\":" << o.target_first_byte_ms
        << ",\"total_ms\":" << o.target_total_ms << "}}";
    }
    f << "],\"timing\":" << timing_json.str() << "}\n";
  }
  if (failed > 0) return kExitError;
  return changed > 0 ? kExitFindings : kExitOk;
}

}  // namespace rwd

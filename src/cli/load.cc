// rewind load: re-issue recorded traffic against a live target, with the
// recorded arrival pattern (× --speed), at a fixed --rate, or closed-loop
// with --concurrency N; report throughput, errors and latency.
#include <fnmatch.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "http/client.h"

namespace rwd {
namespace {

// How often the pacer, waiting for a send time, looks whether the run
// stopped.
constexpr int64_t kStopCheckUs = 20000;

// Sleeps on "clock" until "deadline", or until "stop" is set (seen within
// kStopCheckUs). Returns false if it stopped.
bool SleepUntilUnlessStopped(Clock* clock, int64_t deadline,
                             const std::atomic<bool>& stop) {
  while (!stop) {
    const int64_t now = clock->NowMicros();
    if (now >= deadline) return true;
    clock->SleepUntil(std::min(deadline, now + kStopCheckUs));
  }
  return false;
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(
      v.size() - 1,
      static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

struct Series {
  std::vector<double> first_byte, gap, total;
};

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void JsonString(JsonWriter& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// p50, p90, p99 and max of "v" as an object (zeros when empty).
void JsonDist(JsonWriter& w, const std::vector<double>& v) {
  w.StartObject();
  w.Key("p50");
  w.Double(Pct(v, .5));
  w.Key("p90");
  w.Double(Pct(v, .9));
  w.Key("p99");
  w.Double(Pct(v, .99));
  w.Key("max");
  w.Double(Pct(v, 1));
  w.EndObject();
}

void JsonSeries(JsonWriter& w, const Series& s) {
  w.StartObject();
  w.Key("first_byte_ms");
  JsonDist(w, s.first_byte);
  w.Key("total_ms");
  JsonDist(w, s.total);
  w.Key("gap_ms");
  JsonDist(w, s.gap);
  w.EndObject();
}

// What --json writes: the run's totals and each endpoint's timings,
// measured against the target and as recorded. Strings (the target, an
// endpoint's path) are escaped whatever they hold.
std::string LoadReportJson(const std::string& target, int64_t requests,
                           double seconds, const std::string& stopped_by,
                           int64_t cut_off,
                           const std::map<std::string, int64_t>& errors,
                           const std::vector<double>& lag_ms,
                           const std::map<std::string, Series>& measured,
                           std::map<std::string, Series>& recorded) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("target");
  JsonString(w, target);
  w.Key("requests");
  w.Int64(requests);
  w.Key("seconds");
  w.Double(seconds);
  w.Key("rate");
  w.Double(seconds > 0 ? static_cast<double>(requests) / seconds : 0.0);
  w.Key("stopped_by");
  JsonString(w, stopped_by);
  w.Key("cut_off");
  w.Int64(cut_off);
  w.Key("errors");
  w.StartObject();
  for (const auto& [kind, n] : errors) {
    w.Key(kind.data(), static_cast<rapidjson::SizeType>(kind.size()));
    w.Int64(n);
  }
  w.EndObject();
  w.Key("send_lag_ms");
  JsonDist(w, lag_ms);
  w.Key("endpoints");
  w.StartArray();
  for (const auto& [endpoint, m] : measured) {
    w.StartObject();
    w.Key("endpoint");
    JsonString(w, endpoint);
    w.Key("target");
    JsonSeries(w, m);
    w.Key("recorded");
    JsonSeries(w, recorded[endpoint]);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::string Dist(const std::vector<double>& v) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%.1f / %.1f / %.1f / %.1f", Pct(v, .5),
                Pct(v, .9), Pct(v, .99), Pct(v, 1));
  return buf;
}

void AddTimings(const Response& r, Series* s) {
  s->first_byte.push_back(
      static_cast<double>(r.chunks.empty() ? r.headers_us
                                           : r.chunks.front().offset_us) /
      1000.0);
  s->total.push_back(static_cast<double>(r.TotalMicros()) / 1000.0);
  for (size_t i = 1; i < r.chunks.size(); ++i) {
    s->gap.push_back(
        static_cast<double>(r.chunks[i].offset_us - r.chunks[i - 1].offset_us) /
        1000.0);
  }
}

}  // namespace

int RunLoad(Store* store, const LoadFlags& f, std::ostream& out,
            std::ostream& err) {
  const int modes = (f.rate > 0) + (f.concurrency > 0);
  if (modes > 1) {
    err << "rewind: choose one of --rate and --concurrency (or neither: "
           "recorded arrival times)\n";
    return kExitError;
  }
  if (f.speed <= 0 || f.max_in_flight < 1 || f.rate < 0 || f.concurrency < 0 ||
      f.duration_s < 0 || f.count < 0) {
    err << "rewind: --speed, --max-in-flight must be positive; --rate, "
           "--concurrency, "
           "--duration, --count not negative\n";
    return kExitError;
  }
  std::vector<ExchangeSummary> rows;
  Status s = store->Scan([&](const ExchangeSummary& e) {
    if (!f.path_glob.empty() &&
        fnmatch(f.path_glob.c_str(), e.path.c_str(), 0) != 0)
      return;
    rows.push_back(e);
  });
  if (!s.ok()) {
    err << "rewind: " << s.message() << "\n";
    return kExitError;
  }
  if (rows.empty()) {
    err << "rewind: nothing to replay (no exchanges match)\n";
    return kExitError;
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const ExchangeSummary& a, const ExchangeSummary& b) {
                     return a.started_at_us < b.started_at_us;
                   });
  // Requests are loaded up front so that sending costs no disk reads.
  std::vector<Exchange> exchanges;
  Series recorded_all;
  std::map<std::string, Series> recorded;
  for (const ExchangeSummary& row : rows) {
    Result<Exchange> e = store->Get(row.id);
    if (!e.ok()) {
      err << "rewind: " << e.status().message() << "\n";
      return kExitError;
    }
    if (e->complete)
      AddTimings(e->response,
                 &recorded[e->request.method + " " + e->request.path]);
    exchanges.push_back(std::move(e.value()));
  }
  Clock* const clock = f.clock ? f.clock : SystemClock();
  Result<std::unique_ptr<FetchClient>> probe =
      FetchClient::Create(f.target, f.timeout_s, f.extra_headers, clock);
  if (!probe.ok()) {
    err << "rewind: " << probe.status().message() << "\n";
    return kExitError;
  }
  const int64_t first_arrival = exchanges.front().started_at_us;
  const int64_t span = exchanges.back().started_at_us - first_arrival;
  const int64_t count =
      f.count > 0 ? f.count : static_cast<int64_t>(exchanges.size());
  // Planned send time of the i-th request, µs from the start (open loop).
  auto planned_us = [&](int64_t i) -> int64_t {
    if (f.rate > 0)
      return static_cast<int64_t>(static_cast<double>(i) * 1e6 / f.rate);
    const int64_t n = static_cast<int64_t>(exchanges.size());
    const int64_t lap = i / n;
    const int64_t offset =
        exchanges[static_cast<size_t>(i % n)].started_at_us - first_arrival;
    // Laps follow each other with the mean gap between them.
    const int64_t lap_span = span + (n > 1 ? span / (n - 1) : 1000);
    return static_cast<int64_t>(static_cast<double>(lap * lap_span + offset) /
                                f.speed);
  };
  const bool closed = f.concurrency > 0;
  const int senders = closed ? f.concurrency : f.max_in_flight;

  std::mutex mu;
  std::map<std::string, Series> measured;
  std::map<std::string, int64_t> errors;  // by kind
  std::vector<double> lag_ms;             // actual - planned send time
  std::atomic<int64_t> next{0}, completed{0}, issued{0}, cut{0};
  std::atomic<int> finished{0};  // senders that have returned
  // Set once the run must end (the duration is over, or a signal came):
  // senders stop issuing and requests in flight are cancelled.
  std::atomic<bool> stop{false};
  // Open loop: the pacer alone waits on the clock, and releases request i
  // at its planned time; a free sender takes the next one released.
  std::mutex pace_mu;
  std::condition_variable pace_cv;
  int64_t released = 0;    // requests [0, released) may be sent
  bool paced_all = false;  // no more will be released
  // Each sender's client, so that stopping can cancel what is in flight.
  std::mutex clients_mu;
  std::vector<std::unique_ptr<FetchClient>> clients(
      static_cast<size_t>(senders));
  auto fresh_client = [&](size_t t) {
    auto c = std::move(
        FetchClient::Create(f.target, f.timeout_s, f.extra_headers, clock)
            .value());
    std::lock_guard<std::mutex> lock(clients_mu);
    if (stop) c->Cancel();
    clients[t] = std::move(c);
    return clients[t].get();
  };
  // Every sender's client is made before the clock starts: made by the
  // senders themselves, dozens of them at once, the first request went out
  // late by their set-up (47 ms under AddressSanitizer on a busy machine).
  for (int t = 0; t < senders; ++t) fresh_client(static_cast<size_t>(t));
  const int64_t t0 = clock->NowMicros();
  auto elapsed_us = [&] { return clock->NowMicros() - t0; };
  const int64_t duration_us = static_cast<int64_t>(f.duration_s * 1e6);

  auto pacer = [&] {
    for (int64_t i = 0; i < count; ++i) {
      const int64_t when = planned_us(i);
      if (duration_us > 0 && when > duration_us) break;
      if (!SleepUntilUnlessStopped(clock, t0 + when, stop)) break;
      {
        std::lock_guard<std::mutex> lock(pace_mu);
        released = i + 1;
      }
      pace_cv.notify_one();
    }
    {
      std::lock_guard<std::mutex> lock(pace_mu);
      paced_all = true;
    }
    pace_cv.notify_all();
  };
  auto sender = [&](size_t t) {
    FetchClient* client = clients[t].get();
    while (!stop) {
      int64_t i;
      double lag = 0;
      if (closed) {
        i = next++;
        if (i >= count) break;
      } else {
        std::unique_lock<std::mutex> lock(pace_mu);
        pace_cv.wait(lock,
                     [&] { return stop || next < released || paced_all; });
        if (stop || next >= released) break;
        i = next++;
        lag = static_cast<double>(elapsed_us() - planned_us(i)) / 1000.0;
      }
      const Exchange& e = exchanges[static_cast<size_t>(
          i % static_cast<int64_t>(exchanges.size()))];
      ++issued;
      Result<Response> r = client->Fetch(e.request);
      std::lock_guard<std::mutex> lock(mu);
      if (!r.ok() && stop) {
        ++cut;  // cancelled when the run stopped: neither an answer nor an
                // error
        continue;
      }
      if (!closed) lag_ms.push_back(lag);
      if (!r.ok()) {
        ++errors[r.status().code() == Status::Code::kTimeout ? "timeout"
                                                             : "connection"];
        client = fresh_client(t);
      } else {
        if (r->status >= 400) ++errors["http " + std::to_string(r->status)];
        AddTimings(r.value(),
                   &measured[e.request.method + " " + e.request.path]);
      }
      ++completed;
    }
    ++finished;
  };
  std::vector<std::thread> threads;
  if (!closed) threads.emplace_back(pacer);
  for (int t = 0; t < senders; ++t)
    threads.emplace_back(sender, static_cast<size_t>(t));
  Progress progress("load", 0, clock);
  std::string stopped_by;  // "" while running to the end
  auto stop_all = [&] {
    {
      std::lock_guard<std::mutex> lock(pace_mu);
      stop = true;
    }
    pace_cv.notify_all();
    std::lock_guard<std::mutex> lock(clients_mu);
    for (auto& c : clients) {
      if (c) c->Cancel();
    }
  };
  while (finished.load() < senders) {
    const int sig = f.stop_signal ? f.stop_signal->load() : 0;
    if (stopped_by.empty() && sig != 0) {
      stopped_by = sig == SIGINT    ? "SIGINT"
                   : sig == SIGTERM ? "SIGTERM"
                                    : "signal " + std::to_string(sig);
    } else if (stopped_by.empty() && duration_us > 0 &&
               elapsed_us() >= duration_us) {
      stopped_by = "duration";
    }
    // Again while senders remain: a Fetch that began just as the run
    // stopped is cancelled by the next call.
    if (!stopped_by.empty()) stop_all();
    if (!stop) {
      char line[128];
      std::snprintf(line, sizeof(line), "%lld sent, %lld answered, %.1f s",
                    static_cast<long long>(issued.load()),
                    static_cast<long long>(completed.load()),
                    static_cast<double>(elapsed_us()) / 1e6);
      progress.Show(line);
    }
    // A tick of real time to look for a signal, the end of the duration
    // and finished senders, whatever "clock" is.
    std::this_thread::sleep_for(std::chrono::milliseconds(stop ? 20 : 50));
  }
  for (auto& t : threads) t.join();
  progress.Clear();
  const double seconds = static_cast<double>(elapsed_us()) / 1e6;
  int64_t error_total = 0;
  for (const auto& [kind, n] : errors) error_total += n;

  out << std::fixed << std::setprecision(1) << completed.load()
      << " requests in " << seconds
      << " s: " << static_cast<double>(completed.load()) / seconds << " req/s, "
      << error_total << " errors";
  for (const auto& [kind, n] : errors) out << " (" << kind << ": " << n << ")";
  if (!stopped_by.empty()) {
    out << "; stopped by "
        << (stopped_by == "duration" ? "--duration" : stopped_by) << ", "
        << cut.load() << " in flight cut off";
  }
  out << "\n";
  if (!closed && !lag_ms.empty()) {
    out << std::setprecision(3) << "send time vs plan, ms: p50 "
        << Pct(lag_ms, .5) << ", p99 " << Pct(lag_ms, .99) << ", max "
        << Pct(lag_ms, 1) << "\n";
  }
  out << std::setprecision(1);
  for (const auto& [endpoint, m] : measured) {
    const Series& r = recorded[endpoint];
    out << endpoint << "  ms p50 / p90 / p99 / max   (target | recorded)\n"
        << "  first byte  " << Dist(m.first_byte) << "  |  "
        << Dist(r.first_byte) << "\n"
        << "  total       " << Dist(m.total) << "  |  " << Dist(r.total)
        << "\n";
    if (!m.gap.empty())
      out << "  chunk gap   " << Dist(m.gap) << "  |  " << Dist(r.gap) << "\n";
  }
  if (!f.json_path.empty()) {
    const std::string json =
        LoadReportJson(f.target, completed.load(), seconds,
                       stopped_by.empty() ? "end" : stopped_by, cut.load(),
                       errors, lag_ms, measured, recorded);
    std::ofstream j(f.json_path, std::ios::trunc | std::ios::binary);
    j << json;
    j.close();
    if (!j) {
      err << "rewind: cannot write --json " << f.json_path << "\n";
      return kExitError;
    }
  }
  return kExitOk;
}

}  // namespace rwd

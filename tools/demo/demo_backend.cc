// rewind-demo-backend: a tiny OpenAI-style server for the demo, tests and
// benchmarks. Deterministic answers, configurable latency, loopback only.
//
//   rewind-demo-backend [--port N] [--ttft-ms N] [--itl-ms N] [--tokens N]
//
// Prints "demo backend listening on http://127.0.0.1:PORT" when ready.
//   GET  /v1/models
//   POST /v1/chat/completions   {"messages":[...], "stream": bool}
//   GET  /health
#include <httplib.h>
#include <rapidjson/document.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

namespace {

struct Config {
  int port = 0;
  int ttft_ms = 30;
  int itl_ms = 10;
  int tokens = 12;
};

std::string LastUserMessage(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) return "";
  auto messages = doc.FindMember("messages");
  if (messages == doc.MemberEnd() || !messages->value.IsArray()) return "";
  std::string last;
  for (const auto& m : messages->value.GetArray()) {
    if (m.IsObject() && m.HasMember("content") && m["content"].IsString()) {
      last = m["content"].GetString();
    }
  }
  return last;
}

bool WantsStream(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  return !doc.HasParseError() && doc.IsObject() && doc.HasMember("stream") &&
         doc["stream"].IsBool() && doc["stream"].GetBool();
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    int value = std::atoi(argv[i + 1]);
    if (flag == "--port")
      cfg.port = value;
    else if (flag == "--ttft-ms")
      cfg.ttft_ms = value;
    else if (flag == "--itl-ms")
      cfg.itl_ms = value;
    else if (flag == "--tokens")
      cfg.tokens = value;
    else {
      std::cerr << "usage: rewind-demo-backend [--port N] [--ttft-ms N] "
                   "[--itl-ms N] [--tokens N]\n";
      return 2;
    }
  }

  httplib::Server svr;
  svr.set_tcp_nodelay(true);
  svr.set_keep_alive_max_count(1u << 30);
  svr.new_task_queue = [] { return new httplib::ThreadPool(64); };
  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });
  svr.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(
        "{\"object\":\"list\",\"data\":[{\"id\":\"demo-model\",\"object\":"
        "\"model\",\"owned_by\":\"rewind\"}]}",
        "application/json");
  });
  svr.Post("/v1/chat/completions", [cfg](const httplib::Request& req,
                                         httplib::Response& res) {
    const std::string prompt = LastUserMessage(req.body);
    if (prompt.empty()) {
      res.status = 400;
      res.set_content(
          "{\"error\":{\"message\":\"messages must end with a message that "
          "has content\",\"type\":\"invalid_request_error\"}}",
          "application/json");
      return;
    }
    const std::string answer = "You said: " + Escape(prompt);
    if (!WantsStream(req.body)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(cfg.ttft_ms));
      res.set_content(
          "{\"id\":\"chatcmpl-demo\",\"object\":\"chat.completion\","
          "\"created\":1700000000,\"model\":\"demo-model\",\"choices\":[{"
          "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"" +
              answer +
              "\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":"
              "3,\"completion_tokens\":" +
              std::to_string(cfg.tokens) +
              ",\"total_tokens\":" + std::to_string(cfg.tokens + 3) + "}}",
          "application/json");
      return;
    }
    res.set_chunked_content_provider(
        "text/event-stream", [cfg, answer](size_t, httplib::DataSink& sink) {
          auto start = std::chrono::steady_clock::now();
          for (int i = 0; i <= cfg.tokens; ++i) {
            std::this_thread::sleep_until(
                start +
                std::chrono::milliseconds(cfg.ttft_ms + i * cfg.itl_ms));
            std::string delta =
                i < cfg.tokens ? (i == 0 ? answer : " tok" + std::to_string(i))
                               : "";
            std::string event =
                "data: {\"id\":\"chatcmpl-demo\",\"object\":\"chat.completion."
                "chunk\",\"created\":1700000000,\"model\":\"demo-model\","
                "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" +
                delta + "\"},\"finish_reason\":" +
                (i < cfg.tokens ? "null" : "\"stop\"") + "}]}\n\n";
            if (!sink.write(event.data(), event.size())) return false;
          }
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          return true;
        });
  });

  int port = cfg.port;
  if (port == 0) {
    port = svr.bind_to_any_port("127.0.0.1");
  } else if (!svr.bind_to_port("127.0.0.1", port)) {
    port = -1;
  }
  if (port <= 0) {
    std::cerr << "demo backend: cannot listen on 127.0.0.1:" << cfg.port
              << "\n";
    return 2;
  }
  std::cout << "demo backend listening on http://127.0.0.1:" << port
            << std::endl;
  static httplib::Server* running = &svr;
  std::signal(SIGTERM, [](int) { running->stop(); });
  std::signal(SIGINT, [](int) { running->stop(); });
  svr.listen_after_bind();
  return 0;
}

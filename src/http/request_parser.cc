#include "http/request_parser.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "rewind/exchange.h"
#include "util/text.h"

namespace rwd {
namespace {

// RFC 9110 §5.6.2 tchar.
bool IsTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return HeaderNameEquals(a, b);
}

// Calls "fn" with each comma-separated element of a list header, trimmed.
template <typename Fn>
void ForEachListElement(std::string_view value, Fn fn) {
  while (true) {
    size_t comma = value.find(',');
    fn(TrimOws(value.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

bool ParseDecimal(std::string_view s, size_t* out) {
  if (s.empty() || s.size() > 19) return false;
  size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

RequestParser::State RequestParser::Fail(int status, std::string message) {
  error_status_ = status;
  error_message_ = std::move(message);
  return State::kError;
}

RequestParser::State RequestParser::Parse(std::string_view in) {
  if (error_status_ != 0) return State::kError;
  if (!head_done_) {
    // RFC 9112 §2.2: ignore blank lines before the request line.
    while (!started_ && skip_ + 1 < in.size() && in[skip_] == '\r' &&
           in[skip_ + 1] == '\n') {
      skip_ += 2;
    }
    if (skip_ < in.size() && (in[skip_] != '\r' || (skip_ + 1 < in.size() &&
                                                    in[skip_ + 1] != '\n'))) {
      started_ = true;
    }
    if (!started_) {
      if (skip_ > limits_.max_head) return Fail(400, "too many blank lines");
      return State::kIncomplete;
    }
    const std::string_view rest = in.substr(skip_);
    const size_t from = scan_from_ > 3 ? scan_from_ - 3 : 0;
    const size_t end = rest.find("\r\n\r\n", from);
    // What can never become a request fails as soon as it arrives, not at
    // --client-timeout; checked the same whether the head is whole or not,
    // so a request fails alike however it was cut into reads.
    const std::string_view seen =
        rest.substr(0, end == std::string_view::npos ? rest.size() : end + 4);
    for (size_t lf = seen.find('\n', from); lf != std::string_view::npos;
         lf = seen.find('\n', lf + 1)) {
      if (lf == 0 || seen[lf - 1] != '\r') {
        return Fail(400, "a line ends in a bare LF; HTTP lines end in CRLF");
      }
    }
    const std::string_view method = seen.substr(0, seen.find(' '));
    if (!IsToken(method.substr(0, method.find('\r')))) {
      return Fail(400, static_cast<unsigned char>(seen[0]) == 0x16
                           ? "this is a TLS handshake; rewind listens for "
                             "plain HTTP (http://, not https://)"
                           : "malformed method");
    }
    if (end == std::string_view::npos) {
      scan_from_ = rest.size();
      const size_t first_line = rest.find("\r\n");
      if ((first_line == std::string_view::npos ? rest.size() : first_line) >
          limits_.max_request_line) {
        return Fail(414, "request line longer than " +
                             std::to_string(limits_.max_request_line) +
                             " bytes");
      }
      if (rest.size() > limits_.max_head) {
        return Fail(431, "request head larger than " +
                             std::to_string(limits_.max_head) + " bytes");
      }
      return State::kIncomplete;
    }
    if (end + 4 > limits_.max_head) {
      return Fail(431, "request head larger than " +
                           std::to_string(limits_.max_head) + " bytes");
    }
    State s = ParseHead(rest.substr(0, end + 2));
    if (s == State::kError) return s;
    head_end_ = skip_ + end + 4;
    head_done_ = true;
    chunk_pos_ = head_end_;
  }
  if (chunked_) {
    State s = ParseChunked(in);
    if (s != State::kComplete) return s;
  } else if (in.size() - head_end_ < content_length_) {
    return State::kIncomplete;
  }
  if (chunked_) {
    request_.body = std::move(body_);
  } else {
    request_.body.assign(in.substr(head_end_, content_length_));
    consumed_ = head_end_ + content_length_;
  }
  expect_continue_ = false;
  return State::kComplete;
}

RequestParser::State RequestParser::ParseHead(std::string_view head) {
  // "head" is every line, each ending in CRLF.
  size_t line_end = head.find("\r\n");
  // Request line: method SP request-target SP HTTP-version.
  const std::string_view line = head.substr(0, line_end);
  if (line.size() > limits_.max_request_line) {
    return Fail(414, "request line longer than " +
                         std::to_string(limits_.max_request_line) + " bytes");
  }
  const size_t sp1 = line.find(' ');
  const size_t sp2 =
      sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Fail(400, "malformed request line");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Fail(400, "malformed method");
  if (target.empty()) return Fail(400, "empty request target");
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return Fail(400, "request target holds a control character");
    }
    // RFC 3986: a URI is ASCII; anything else is percent-encoded.
    if (u >= 0x80) {
      return Fail(400,
                  "request target holds a byte that is not ASCII; "
                  "percent-encode it");
    }
  }
  if (version == "HTTP/1.1") {
    request_.http10 = false;
  } else if (version == "HTTP/1.0") {
    request_.http10 = true;
  } else if (version.size() == 8 && version.substr(0, 5) == "HTTP/" &&
             version[5] >= '0' && version[5] <= '9' && version[6] == '.' &&
             version[7] >= '0' && version[7] <= '9') {
    return Fail(505, "HTTP version " + std::string(version) +
                         " is not supported; send HTTP/1.1");
  } else {
    return Fail(400, "malformed HTTP version");
  }
  request_.method = std::string(method);
  request_.target = std::string(target);

  bool has_length = false;
  bool has_te = false;
  bool keep_alive = false;
  bool close = false;
  bool has_content_type = false;
  int hosts = 0;
  size_t header_lines = 0;
  for (size_t pos = line_end + 2; pos < head.size(); pos = line_end + 2) {
    line_end = head.find("\r\n", pos);
    const std::string_view h = head.substr(pos, line_end - pos);
    if (++header_lines > limits_.max_headers) {
      return Fail(431, "more than " + std::to_string(limits_.max_headers) +
                           " header lines");
    }
    if (h.size() > limits_.max_header_line) {
      return Fail(431, "a header line is longer than " +
                           std::to_string(limits_.max_header_line) + " bytes");
    }
    if (!h.empty() && (h[0] == ' ' || h[0] == '\t')) {
      return Fail(400,
                  "obsolete line folding (a header line starting with "
                  "white space) is not accepted");
    }
    const size_t colon = h.find(':');
    if (colon == std::string_view::npos) {
      return Fail(400, "a header line has no colon");
    }
    const std::string_view name = h.substr(0, colon);
    if (!IsToken(name)) {
      return Fail(400, name.empty() || name.back() == ' ' || name.back() == '\t'
                           ? "white space before a header's colon is not "
                             "accepted"
                           : "malformed header name");
    }
    const std::string_view value = TrimOws(h.substr(colon + 1));
    for (char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && u != '\t') || u == 0x7f) {
        return Fail(
            400, "header " + std::string(name) + " holds a control character");
      }
    }
    if (EqualsIgnoreCase(name, "Content-Length")) {
      bool ok = true;
      ForEachListElement(value, [&](std::string_view v) {
        size_t n = 0;
        if (!ParseDecimal(v, &n) || (has_length && n != content_length_)) {
          ok = false;
          return;
        }
        has_length = true;
        content_length_ = n;
      });
      if (!ok) return Fail(400, "invalid or conflicting Content-Length");
      continue;
    }
    if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      bool ok = true;
      bool twice = false;
      ForEachListElement(value, [&](std::string_view v) {
        if (!EqualsIgnoreCase(v, "chunked")) ok = false;
        if (has_te) twice = true;
        has_te = true;
      });
      if (!ok) {
        return Fail(501, "Transfer-Encoding " + std::string(value) +
                             " is not supported; send chunked or a "
                             "Content-Length");
      }
      if (twice) return Fail(400, "chunked given more than once");
      continue;
    }
    if (EqualsIgnoreCase(name, "Content-Type")) {
      if (has_content_type) return Fail(400, "more than one Content-Type");
      has_content_type = true;
    }
    if (EqualsIgnoreCase(name, "Expect")) {
      if (!EqualsIgnoreCase(value, "100-continue")) {
        return Fail(417, "Expect: " + std::string(value) + " is not supported");
      }
      // RFC 9110 §10.1.1: ignored in an HTTP/1.0 request.
      expect_continue_ = !request_.http10;
      continue;
    }
    if (EqualsIgnoreCase(name, "Host") && ++hosts > 1) {
      return Fail(400, "more than one Host header");
    }
    if (EqualsIgnoreCase(name, "Connection")) {
      ForEachListElement(value, [&](std::string_view v) {
        if (EqualsIgnoreCase(v, "close")) close = true;
        if (EqualsIgnoreCase(v, "keep-alive")) keep_alive = true;
      });
    }
    request_.headers.emplace_back(name, value);
  }
  if (has_te && has_length) {
    return Fail(400, "both Transfer-Encoding and Content-Length");
  }
  if (has_te && request_.http10) {
    return Fail(400, "Transfer-Encoding in an HTTP/1.0 request");
  }
  if (has_length && content_length_ > limits_.max_body) {
    return Fail(413, "request body larger than --max-body-bytes (" +
                         std::to_string(limits_.max_body) + " bytes)");
  }
  chunked_ = has_te;
  if (!has_length) content_length_ = 0;
  if (content_length_ == 0 && !chunked_) expect_continue_ = false;
  request_.close = close || (request_.http10 && !keep_alive);
  return State::kIncomplete;
}

RequestParser::State RequestParser::ParseChunked(std::string_view in) {
  while (true) {
    switch (chunk_step_) {
      case ChunkStep::kSize:
      case ChunkStep::kDataEnd:
      case ChunkStep::kTrailer: {
        const size_t eol = in.find("\r\n", chunk_pos_);
        if (eol == std::string_view::npos) {
          if (in.size() - chunk_pos_ > limits_.max_header_line) {
            return Fail(400, "malformed chunked body (a line too long)");
          }
          return State::kIncomplete;
        }
        const std::string_view line = in.substr(chunk_pos_, eol - chunk_pos_);
        chunk_pos_ = eol + 2;
        if (chunk_step_ == ChunkStep::kDataEnd) {
          if (!line.empty()) return Fail(400, "malformed chunked body");
          chunk_step_ = ChunkStep::kSize;
          break;
        }
        if (chunk_step_ == ChunkStep::kTrailer) {
          if (line.empty()) {
            consumed_ = chunk_pos_;
            return State::kComplete;
          }
          // Trailer fields are read and dropped: rewind forwards the body
          // with a Content-Length.
          if (++trailer_lines_ > limits_.max_headers ||
              line.find(':') == std::string_view::npos) {
            return Fail(400, "malformed chunked trailer");
          }
          break;
        }
        // chunk-size [ chunk-ext ]
        std::string_view size = line.substr(0, line.find(';'));
        size = TrimOws(size);
        if (size.empty() || size.size() > 15) {
          return Fail(400, "malformed chunk size");
        }
        size_t n = 0;
        for (char c : size) {
          int d = (c >= '0' && c <= '9')   ? c - '0'
                  : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                           : -1;
          if (d < 0) return Fail(400, "malformed chunk size");
          n = n * 16 + static_cast<size_t>(d);
        }
        if (n == 0) {
          chunk_step_ = ChunkStep::kTrailer;
          break;
        }
        if (body_.size() + n > limits_.max_body) {
          return Fail(413, "request body larger than --max-body-bytes (" +
                               std::to_string(limits_.max_body) + " bytes)");
        }
        chunk_left_ = n;
        chunk_step_ = ChunkStep::kData;
        break;
      }
      case ChunkStep::kData: {
        const size_t have = std::min(chunk_left_, in.size() - chunk_pos_);
        body_.append(in.substr(chunk_pos_, have));
        chunk_pos_ += have;
        chunk_left_ -= have;
        if (chunk_left_ > 0) return State::kIncomplete;
        chunk_step_ = ChunkStep::kDataEnd;
        break;
      }
    }
  }
}

ParsedRequest RequestParser::Take() {
  ParsedRequest out = std::move(request_);
  *this = RequestParser(limits_);
  return out;
}

const char* ReasonPhrase(int status) {
  struct Reason {
    int status;
    const char* phrase;
  };
  // RFC 9110 §15 and the IANA registry, by code.
  static constexpr Reason kReasons[] = {
      {100, "Continue"},
      {101, "Switching Protocols"},
      {102, "Processing"},
      {103, "Early Hints"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {203, "Non-Authoritative Information"},
      {204, "No Content"},
      {205, "Reset Content"},
      {206, "Partial Content"},
      {207, "Multi-Status"},
      {208, "Already Reported"},
      {226, "IM Used"},
      {300, "Multiple Choices"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {303, "See Other"},
      {304, "Not Modified"},
      {305, "Use Proxy"},
      {307, "Temporary Redirect"},
      {308, "Permanent Redirect"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {402, "Payment Required"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {406, "Not Acceptable"},
      {407, "Proxy Authentication Required"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {410, "Gone"},
      {411, "Length Required"},
      {412, "Precondition Failed"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {415, "Unsupported Media Type"},
      {416, "Range Not Satisfiable"},
      {417, "Expectation Failed"},
      {418, "I'm a teapot"},
      {421, "Misdirected Request"},
      {422, "Unprocessable Content"},
      {423, "Locked"},
      {424, "Failed Dependency"},
      {425, "Too Early"},
      {426, "Upgrade Required"},
      {428, "Precondition Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {451, "Unavailable For Legal Reasons"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
      {506, "Variant Also Negotiates"},
      {507, "Insufficient Storage"},
      {508, "Loop Detected"},
      {510, "Not Extended"},
      {511, "Network Authentication Required"}};
  const auto* found =
      std::lower_bound(std::begin(kReasons), std::end(kReasons), status,
                       [](const Reason& r, int s) { return r.status < s; });
  if (found != std::end(kReasons) && found->status == status) {
    return found->phrase;
  }
  static constexpr const char* kClasses[] = {"Informational", "Success",
                                             "Redirection", "Client Error"};
  const int klass = status / 100;
  return klass >= 1 && klass <= 4 ? kClasses[klass - 1] : "Server Error";
}

std::string ToWire(const ParsedRequest& request) {
  std::string out = request.method + " " + request.target +
                    (request.http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  for (const auto& [name, value] : request.headers) {
    out += name + ": " + value + "\r\n";
  }
  out += "Content-Length: " + std::to_string(request.body.size()) + "\r\n\r\n" +
         request.body;
  return out;
}

std::string RejectionResponse(int status, const std::string& message) {
  const std::string body =
      "{\"error\":{\"type\":\"rewind_bad_request\","
      "\"message\":" +
      JsonQuote(message) + "}}\n";
  return "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) +
         "\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) +
         "\r\nConnection: close\r\nX-Rewind: error\r\n\r\n" + body;
}

}  // namespace rwd

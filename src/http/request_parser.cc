#include "http/request_parser.h"

#include <algorithm>
#include <utility>
#include <vector>

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

// Methods cpp-httplib routes; it refuses every other one with 400.
bool IsRoutedMethod(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "POST" || m == "PUT" ||
         m == "PATCH" || m == "DELETE" || m == "OPTIONS";
}

// Methods whose body cpp-httplib reads.
bool ReadsBody(std::string_view m) {
  return m == "POST" || m == "PUT" || m == "PATCH";
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

const char* Reason(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
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
  const std::string_view body = chunked_
                                    ? std::string_view(body_)
                                    : in.substr(head_end_, content_length_);
  if (!chunked_) consumed_ = head_end_ + content_length_;
  expect_continue_ = false;
  request_.body_size = body.size();
  request_.normalized = std::move(head_out_);
  request_.normalized +=
      "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  request_.normalized += body;
  // A GET (or any method cpp-httplib does not read a body for) that
  // carries one is routed as POST, so its body is read; the handler sees
  // the method as sent.
  if (!body.empty() && !ReadsBody(request_.method) &&
      IsRoutedMethod(request_.method)) {
    request_.normalized.replace(0, request_.method.size(), "POST");
  }
  return State::kComplete;
}

RequestParser::State RequestParser::ParseHead(std::string_view head) {
  // "head" is every line, each ending in CRLF.
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < head.size()) {
    size_t eol = head.find("\r\n", pos);
    lines.push_back(head.substr(pos, eol - pos));
    pos = eol + 2;
  }
  if (lines.size() - 1 > limits_.max_headers) {
    return Fail(431, "more than " + std::to_string(limits_.max_headers) +
                         " header lines");
  }
  // Request line: method SP request-target SP HTTP-version.
  const std::string_view line = lines[0];
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

  head_out_.clear();
  head_out_.reserve(head.size() + 32);
  head_out_.append(IsRoutedMethod(method) ? method : std::string_view("POST"));
  head_out_.append(line.substr(sp1));
  head_out_.append("\r\n");

  bool has_length = false;
  bool has_te = false;
  bool keep_alive = false;
  bool close = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view h = lines[i];
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
      ForEachListElement(value, [&](std::string_view v) {
        if (!EqualsIgnoreCase(v, "chunked") || has_te) ok = false;
        has_te = true;
      });
      if (!ok) {
        return Fail(501, "Transfer-Encoding " + std::string(value) +
                             " is not supported; send chunked or a "
                             "Content-Length");
      }
      continue;
    }
    if (EqualsIgnoreCase(name, "Content-Type")) {
      if (request_.has_content_type) {
        return Fail(400, "more than one Content-Type");
      }
      request_.content_type = std::string(value);
      request_.has_content_type = true;
      continue;
    }
    if (EqualsIgnoreCase(name, "Expect")) {
      if (!EqualsIgnoreCase(value, "100-continue")) {
        return Fail(417, "Expect: " + std::string(value) + " is not supported");
      }
      expect_continue_ = true;
      continue;
    }
    if (EqualsIgnoreCase(name, "Connection")) {
      ForEachListElement(value, [&](std::string_view v) {
        if (EqualsIgnoreCase(v, "close")) close = true;
        if (EqualsIgnoreCase(v, "keep-alive")) keep_alive = true;
      });
    }
    head_out_.append(name);
    head_out_.append(": ");
    head_out_.append(value);
    head_out_.append("\r\n");
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

std::string RejectionResponse(int status, const std::string& message) {
  const std::string body =
      "{\"error\":{\"type\":\"rewind_bad_request\","
      "\"message\":" +
      JsonQuote(message) + "}}\n";
  return "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) +
         "\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) +
         "\r\nConnection: close\r\nX-Rewind: error\r\n\r\n" + body;
}

}  // namespace rwd

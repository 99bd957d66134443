#include "http/wire.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <charconv>
#include <string_view>
#include <utility>
#include <vector>

#include "http/http_util.h"
#include "util/text.h"

namespace rwd {
namespace {

void AppendNumber(std::string* out, uint64_t n) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof(digits), n).ptr;
  out->append(digits, static_cast<size_t>(end - digits));
}

bool NameIs(const std::string& name, std::string_view expected) {
  return name.size() == expected.size() && HeaderNameEquals(name, expected);
}

// Writes every byte the iovecs hold, as SendAll does.
bool SendAllv(int fd, iovec* iov, int count, int timeout_ms) {
  while (count > 0) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    const ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return false;
      continue;
    }
    size_t sent = static_cast<size_t>(n);
    while (count > 0 && sent >= iov->iov_len) {
      sent -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + sent;
      iov->iov_len -= sent;
    }
  }
  return true;
}

// Runs "res"'s content provider until its body is written: "length" bytes
// when it announced them, else until it calls done(); each write framed as
// a chunk when "chunked". False when the provider fails, stops making
// progress or the client cannot be written to.
bool WriteProvided(const ClientEnd& client, httplib::Response& res,
                   bool chunked, uint64_t* written) {
  bool ok = true;
  bool done = false;
  httplib::DataSink sink;
  sink.write = [&](const char* data, size_t size) {
    if (!ok) return false;
    if (size == 0) return true;
    if (chunked) {
      char line[24];
      auto end = std::to_chars(line, line + sizeof(line) - 2, size, 16).ptr;
      *end++ = '\r';
      *end++ = '\n';
      static constexpr char kCrlf[] = "\r\n";
      iovec iov[3] = {{line, static_cast<size_t>(end - line)},
                      {const_cast<char*>(data), size},
                      {const_cast<char*>(kCrlf), 2}};
      ok = SendAllv(client.fd, iov, 3, client.write_timeout_ms);
    } else {
      ok = SendAll(client.fd, data, size, client.write_timeout_ms);
    }
    if (ok) *written += size;
    return ok;
  };
  sink.done = [&] {
    if (done) return;
    done = true;
    if (chunked && ok) {
      ok = SendAll(client.fd, "0\r\n\r\n", 5, client.write_timeout_ms);
    }
  };
  sink.is_writable = [&] { return ok; };
  const uint64_t length = res.content_length_;
  try {
    while (ok && (length > 0 ? *written < length : !done)) {
      const uint64_t before = *written;
      const size_t offset = static_cast<size_t>(before);
      if (!res.content_provider_(
              offset, length > 0 ? static_cast<size_t>(length - before) : 0,
              sink)) {
        return false;
      }
      // A provider that returns without writing or finishing would be
      // called forever.
      if (*written == before && !done) return false;
    }
  } catch (...) {
    return false;
  }
  return ok;
}

}  // namespace

FrontRequest MakeFrontRequest(ParsedRequest&& parsed) {
  FrontRequest out;
  out.http10 = parsed.http10;
  out.target = std::move(parsed.target);
  const size_t hash = out.target.find('#');
  if (hash != std::string::npos) out.target.erase(hash);
  Request& r = out.request;
  r.method = std::move(parsed.method);
  const size_t q = out.target.find('?');
  r.path = out.target.substr(0, q);
  if (q != std::string::npos) r.query = out.target.substr(q + 1);
  out.path = r.path.find('%') == std::string::npos
                 ? r.path
                 : httplib::detail::decode_url(r.path, false);
  // Headers the Connection header names are hop-by-hop too (RFC 9110
  // §7.6.1).
  std::vector<std::string> named;
  for (const auto& [name, value] : parsed.headers) {
    if (NameIs(name, "Connection")) AddConnectionOptions(value, &named);
  }
  r.headers.reserve(parsed.headers.size());
  for (auto& header : parsed.headers) {
    if (IsHopByHop(header.first) || NameIs(header.first, "Accept-Encoding") ||
        (!named.empty() && IsNamedIn(header.first, named))) {
      continue;
    }
    r.headers.push_back(std::move(header));
  }
  r.body = std::move(parsed.body);
  return out;
}

bool QueryParam(const std::string& query, const std::string& name,
                std::string* value) {
  if (query.empty()) return false;
  httplib::Params params;
  httplib::detail::parse_query_text(query, params);
  auto it = params.find(name);
  if (it == params.end()) return false;
  *value = it->second;
  return true;
}

namespace {

// FrameResponse and FrameAnswer, for either kind of header list.
template <typename Headers>
FramedHead Frame(const ResponseFraming& how, int status, const Headers& headers,
                 size_t body_size, bool provided, uint64_t length,
                 bool chunked_provider) {
  FramedHead f;
  // 204 and 304 never carry a body (RFC 9110 §6.4.1): none is written and
  // no framing added. A 304's own Content-Length (what a 200 would carry)
  // is kept; a 204 may not have one.
  const bool no_content = status == 204 || status == 304;
  f.whole = !no_content && !provided && body_size > 0;
  f.provided = !no_content && provided;
  // HTTP/1.0 has no chunked coding: a body of unknown length ends with the
  // connection instead.
  f.chunked = f.provided && length == 0 && chunked_provider && !how.http10;
  f.until_close = f.provided && length == 0 && !f.chunked;
  f.close = how.close || f.until_close;

  std::string& head = f.head;
  head.reserve(256);
  head += "HTTP/1.1 ";
  AppendNumber(&head, static_cast<uint64_t>(status));
  head += ' ';
  head += ReasonPhrase(status);
  head += "\r\n";
  bool has_type = false;
  bool has_length = false;
  for (const auto& [name, value] : headers) {
    if (NameIs(name, "Content-Length")) {
      // The body's own length is written below.
      if (f.whole || f.provided || status == 204) continue;
      has_length = true;
    } else if (NameIs(name, "Content-Type")) {
      has_type = true;
    }
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  if (!has_type && (f.whole || f.provided)) {
    head += "Content-Type: text/plain\r\n";
  }
  if (f.whole) {
    head += "Content-Length: ";
    AppendNumber(&head, body_size);
    head += "\r\n";
  } else if (f.provided && length > 0) {
    head += "Content-Length: ";
    AppendNumber(&head, length);
    head += "\r\n";
  } else if (f.chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else if (!f.provided && !has_length && !no_content) {
    head += "Content-Length: 0\r\n";
  }
  if (f.close) {
    head += "Connection: close\r\n";
  } else {
    head += "Keep-Alive: timeout=";
    AppendNumber(&head, static_cast<uint64_t>(how.keep_alive_s));
    head += "\r\n";
  }
  head += "\r\n";
  return f;
}

}  // namespace

FramedHead FrameResponse(const ResponseFraming& how,
                         const httplib::Response& res, bool provided,
                         uint64_t length, bool chunked_provider) {
  return Frame(how, res.status, res.headers, res.body.size(), provided, length,
               chunked_provider);
}

FramedHead FrameAnswer(const ResponseFraming& how, int status,
                       const HeaderList& headers, size_t body_size,
                       bool provided, uint64_t length, bool chunked_provider) {
  return Frame(how, status, headers, body_size, provided, length,
               chunked_provider);
}

bool WriteWhole(const ClientEnd& client, std::string* head,
                const std::string& body) {
  iovec iov[2] = {{head->data(), head->size()},
                  {const_cast<char*>(body.data()), body.size()}};
  return SendAllv(client.fd, iov, body.empty() ? 1 : 2,
                  client.write_timeout_ms);
}

WriteResult WriteResponse(const ClientEnd& client, const ResponseFraming& how,
                          httplib::Response& res) {
  WriteResult result;
  FramedHead f = FrameResponse(
      how, res, res.body.empty() && res.content_provider_ != nullptr,
      res.content_length_, res.is_chunked_content_provider_);
  std::string& head = f.head;
  if (how.head || (!f.whole && !f.provided)) {
    result.ok =
        SendAll(client.fd, head.data(), head.size(), client.write_timeout_ms) &&
        !f.close;
    return result;
  }
  if (f.whole) {
    iovec iov[2] = {{head.data(), head.size()},
                    {res.body.data(), res.body.size()}};
    result.ok = SendAllv(client.fd, iov, 2, client.write_timeout_ms);
    if (result.ok) result.body_bytes = res.body.size();
    result.ok = result.ok && !f.close;
    return result;
  }
  // Streamed: the head goes now, each piece as the provider writes it.
  if (!SendAll(client.fd, head.data(), head.size(), client.write_timeout_ms)) {
    return result;
  }
  const bool ok = WriteProvided(client, res, f.chunked, &result.body_bytes);
  res.content_provider_success_ = ok;
  result.ok = ok && !f.close;
  return result;
}

bool SendAll(int fd, const char* data, size_t size, int timeout_ms) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace rwd

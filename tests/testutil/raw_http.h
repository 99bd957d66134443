// Raw-socket HTTP for tests that must see the bytes on the wire: one
// connection, one request written as given, the response read to the end.
#ifndef REWIND_TESTS_TESTUTIL_RAW_HTTP_H_
#define REWIND_TESTS_TESTUTIL_RAW_HTTP_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

namespace rwd::testing {

struct RawResponse {
  int status = 0;
  std::string head;  // status line and headers
  bool chunked = false;
  bool complete = false;  // a length body was whole, or the last chunk came
  std::vector<std::string> chunks;
  std::string body;
};

// A connection to 127.0.0.1:"port", or -1. "receive_buffer" > 0 sets
// SO_RCVBUF before connecting, which also stops the kernel's autotuning
// from growing it (on loopback up to 32 MiB, enough to take a whole answer
// the client never reads).
inline int Connect(int port, int receive_buffer = 0) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (receive_buffer > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer,
               sizeof(receive_buffer));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline std::string RequestText(const std::string& method,
                               const std::string& path, const std::string& body,
                               const std::string& extra_headers = "") {
  return method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
         "Connection: close\r\nContent-Type: application/json\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

// A socket listening on 127.0.0.1 at an ephemeral port; sets *port.
inline int ListenLoopback(int* port, int backlog = 64) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  listen(fd, backlog);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

// Reads everything the server sends until it closes the connection.
inline std::string ReadToEnd(int fd) {
  std::string data;
  char buf[65536];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
    data.append(buf, static_cast<size_t>(n));
  return data;
}

// Parses the response at "data"[*pos...] and moves *pos past it; a
// response without Content-Length or chunking takes the rest.
inline RawResponse ParseRawResponse(const std::string& data, size_t* pos) {
  RawResponse r;
  size_t end = data.find("\r\n\r\n", *pos);
  if (end == std::string::npos) return r;
  r.head = data.substr(*pos, end - *pos);
  r.status = std::atoi(r.head.c_str() + 9);
  size_t at = end + 4;
  std::string lower = r.head;
  for (char& c : lower) c = static_cast<char>(tolower(c));
  r.chunked = lower.find("transfer-encoding: chunked") != std::string::npos;
  if (!r.chunked) {
    size_t cl = lower.find("content-length: ");
    size_t len = cl == std::string::npos ? data.size() - at
                                         : std::stoul(lower.substr(cl + 16));
    r.body = data.substr(at, len);
    r.complete = data.size() - at >= len;
    r.chunks = {r.body};
    *pos = std::min(data.size(), at + len);
    return r;
  }
  while (at < data.size()) {
    size_t eol = data.find("\r\n", at);
    if (eol == std::string::npos) break;
    size_t size = std::stoul(data.substr(at, eol - at), nullptr, 16);
    if (size == 0) {
      r.complete = true;
      at = eol + 4;
      break;
    }
    if (eol + 2 + size > data.size()) break;
    r.chunks.push_back(data.substr(eol + 2, size));
    r.body += r.chunks.back();
    at = eol + 2 + size + 2;
  }
  *pos = std::min(data.size(), at);
  return r;
}

// Sends "request" on a new connection and reads the response until the
// server closes it.
inline RawResponse RawExchange(int port, const std::string& request) {
  int fd = Connect(port);
  if (fd < 0) return RawResponse{};
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  const std::string data = ReadToEnd(fd);
  close(fd);
  size_t pos = 0;
  return ParseRawResponse(data, &pos);
}

inline std::string HeaderOf(const RawResponse& r, const std::string& name) {
  std::string lower_head = r.head;
  for (char& c : lower_head) c = static_cast<char>(tolower(c));
  std::string key = "\r\n" + name + ": ";
  for (char& c : key) c = static_cast<char>(tolower(c));
  size_t at = lower_head.find(key);
  if (at == std::string::npos) return "";
  size_t start = at + key.size();
  return r.head.substr(start, r.head.find("\r\n", start) - start);
}

inline int CountOf(const RawResponse& r, const std::string& name) {
  std::string lower_head = r.head;
  for (char& c : lower_head) c = static_cast<char>(tolower(c));
  std::string key = "\r\n" + name + ":";
  for (char& c : key) c = static_cast<char>(tolower(c));
  int n = 0;
  for (size_t at = lower_head.find(key); at != std::string::npos;
       at = lower_head.find(key, at + 1)) {
    ++n;
  }
  return n;
}

}  // namespace rwd::testing

#endif  // REWIND_TESTS_TESTUTIL_RAW_HTTP_H_

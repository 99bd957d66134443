#include "http/wire.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <thread>

namespace rwd {
namespace {

// A connected socket pair: the response is written to one end and read
// whole from the other.
class Wire : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0);
  }
  void TearDown() override { Close(); }
  void Close() {
    for (int& fd : fds_) {
      if (fd >= 0) close(fd);
      fd = -1;
    }
  }
  // A new pair, for a test that writes more than one response.
  void Reopen() {
    Close();
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0);
  }

  // Writes "res" and returns what the client end received.
  std::string Write(httplib::Response& res, ResponseFraming how = {},
                    WriteResult* result = nullptr) {
    std::string got;
    std::thread reader([&] {
      char buf[4096];
      ssize_t n;
      while ((n = read(fds_[1], buf, sizeof(buf))) > 0) got.append(buf, n);
    });
    const WriteResult r = WriteResponse(ClientEnd{fds_[0], 1000}, how, res);
    if (result) *result = r;
    shutdown(fds_[0], SHUT_WR);
    reader.join();
    return got;
  }

  int fds_[2] = {-1, -1};
};

TEST_F(Wire, ABodyGoesWithItsLengthTypeAndTheKeepAliveTimeout) {
  httplib::Response res;
  res.status = 200;
  res.headers.emplace("X-B", "2");
  res.headers.emplace("X-A", "1");
  res.body = "hello";
  ResponseFraming how;
  how.keep_alive_s = 7;
  WriteResult result;
  EXPECT_EQ(Write(res, how, &result),
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\n"
            "Content-Type: text/plain\r\nContent-Length: 5\r\n"
            "Keep-Alive: timeout=7\r\n\r\nhello");
  EXPECT_TRUE(result.ok);
  EXPECT_EQ(result.body_bytes, 5u);
}

TEST_F(Wire, TheBodysLengthReplacesOneTheHandlerSet) {
  httplib::Response res;
  res.status = 201;
  res.set_header("Content-Length", "99");
  res.set_content("{}", "application/json");
  const std::string got = Write(res);
  EXPECT_EQ(got,
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\n{}");
}

TEST_F(Wire, HeadSendsTheHeadersOnly) {
  httplib::Response res;
  res.status = 200;
  res.set_content("hello", "text/html");
  ResponseFraming how;
  how.head = true;
  EXPECT_EQ(Write(res, how),
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
            "Content-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\n");
}

TEST_F(Wire, NoBodySaysLengthZeroUnlessTheHandlerGaveALength) {
  httplib::Response empty;
  empty.status = 200;
  EXPECT_EQ(Write(empty),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
            "Keep-Alive: timeout=5\r\n\r\n");
  // A replayed HEAD says the length a GET would have carried.
  httplib::Response head;
  head.status = 200;
  head.set_header("Content-Length", "1024");
  ResponseFraming how;
  how.head = true;
  Reopen();
  EXPECT_EQ(Write(head, how),
            "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n"
            "Keep-Alive: timeout=5\r\n\r\n");
}

// RFC 9110 §6.4.1: no body after 204 or 304, and a 204 has no length.
TEST_F(Wire, NoContentAndNotModifiedCarryNoBody) {
  httplib::Response no_content;
  no_content.status = 204;
  no_content.set_header("Content-Length", "5");
  no_content.set_content("hello", "text/plain");
  EXPECT_EQ(Write(no_content),
            "HTTP/1.1 204 No Content\r\nContent-Type: text/plain\r\n"
            "Keep-Alive: timeout=5\r\n\r\n");
  Reopen();
  httplib::Response not_modified;
  not_modified.status = 304;
  not_modified.set_header("Content-Length", "100");
  not_modified.set_header("ETag", "\"v1\"");
  not_modified.set_chunked_content_provider(
      "text/plain", [](size_t, httplib::DataSink& sink) {
        sink.write("x", 1);
        sink.done();
        return true;
      });
  WriteResult result;
  EXPECT_EQ(Write(not_modified, {}, &result),
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n"
            "Content-Type: text/plain\r\nETag: \"v1\"\r\n"
            "Keep-Alive: timeout=5\r\n\r\n");
  EXPECT_TRUE(result.ok);
}

TEST_F(Wire, AnHttp10ClientGetsAStreamUnchunkedEndedByTheClose) {
  httplib::Response res;
  res.status = 200;
  res.set_chunked_content_provider("text/event-stream",
                                   [](size_t, httplib::DataSink& sink) {
                                     sink.write("data: a\n\n", 9);
                                     sink.done();
                                     return true;
                                   });
  ResponseFraming how;
  how.http10 = true;
  WriteResult result;
  EXPECT_EQ(Write(res, how, &result),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            "Connection: close\r\n\r\ndata: a\n\n");
  EXPECT_FALSE(result.ok);
}

TEST_F(Wire, AChunkedProviderIsFramedChunkByChunk) {
  httplib::Response res;
  res.status = 200;
  res.set_chunked_content_provider(
      "text/event-stream", [](size_t, httplib::DataSink& sink) {
        sink.write("data: a\n\n", 9);
        sink.write("", 0);  // nothing: not a chunk, and not the end
        sink.write("data: [DONE]\n\n", 14);
        sink.done();
        return true;
      });
  WriteResult result;
  EXPECT_EQ(Write(res, {}, &result),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            "Transfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n"
            "9\r\ndata: a\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n");
  EXPECT_TRUE(result.ok);
  EXPECT_EQ(result.body_bytes, 23u);
}

TEST_F(Wire, AProviderWithALengthWritesExactlyIt) {
  httplib::Response res;
  res.status = 200;
  int calls = 0;
  res.set_content_provider(6, "text/plain",
                           [&](size_t offset, size_t, httplib::DataSink& sink) {
                             ++calls;
                             return sink.write(offset == 0 ? "abc" : "def", 3);
                           });
  WriteResult result;
  EXPECT_EQ(Write(res, {}, &result),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            "Content-Length: 6\r\nKeep-Alive: timeout=5\r\n\r\nabcdef");
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(result.ok);
}

TEST_F(Wire, AProviderThatFailsStallsOrThrowsEndsTheConnection) {
  struct Case {
    const char* what;
    std::function<bool(size_t, size_t, httplib::DataSink&)> provider;
  };
  const Case cases[] = {
      {"returns false",
       [](size_t, size_t, httplib::DataSink& sink) {
         sink.write("ab", 2);
         return false;
       }},
      // Called again and again, it would never finish.
      {"returns true without writing",
       [](size_t, size_t, httplib::DataSink&) { return true; }},
      {"throws",
       [](size_t, size_t, httplib::DataSink&) -> bool {
         throw std::runtime_error("broken");
       }},
  };
  for (const Case& c : cases) {
    Reopen();
    httplib::Response res;
    res.status = 200;
    res.set_content_provider(10, "text/plain", c.provider);
    WriteResult result;
    const std::string got = Write(res, {}, &result);
    EXPECT_FALSE(result.ok) << c.what;
    EXPECT_NE(got.find("Content-Length: 10\r\n"), std::string::npos) << c.what;
  }
}

TEST_F(Wire, ABodyOfUnknownLengthEndsWithTheConnection) {
  httplib::Response res;
  res.status = 200;
  res.set_content_provider("text/plain", [](size_t, httplib::DataSink& sink) {
    sink.write("all of it", 9);
    sink.done();
    return true;
  });
  WriteResult result;
  EXPECT_EQ(Write(res, {}, &result),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            "Connection: close\r\n\r\nall of it");
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.body_bytes, 9u);
}

TEST_F(Wire, CloseIsSaidAndEndsTheConnection) {
  httplib::Response res;
  res.status = 200;
  res.body = "x";
  ResponseFraming how;
  how.close = true;
  WriteResult result;
  EXPECT_EQ(Write(res, how, &result),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            "Content-Length: 1\r\nConnection: close\r\n\r\nx");
  EXPECT_FALSE(result.ok);
}

TEST_F(Wire, AGoneClientFailsTheWrite) {
  close(fds_[1]);
  fds_[1] = -1;
  httplib::Response res;
  res.status = 200;
  res.body = std::string(1 << 20, 'x');
  EXPECT_FALSE(WriteResponse(ClientEnd{fds_[0], 1000}, {}, res).ok);
}

TEST(ReasonPhrase, KnownCodesTheirsOthersTheirClass) {
  EXPECT_STREQ(ReasonPhrase(200), "OK");
  EXPECT_STREQ(ReasonPhrase(429), "Too Many Requests");
  EXPECT_STREQ(ReasonPhrase(511), "Network Authentication Required");
  EXPECT_STREQ(ReasonPhrase(299), "Success");
  EXPECT_STREQ(ReasonPhrase(499), "Client Error");
  EXPECT_STREQ(ReasonPhrase(599), "Server Error");
}

TEST(MakeFrontRequest, KeepsTheEndToEndHeadersInOrderAndSplitsTheTarget) {
  ParsedRequest p;
  p.method = "POST";
  p.target = "/a%20b/c?x=1&y=%2F#frag";
  p.headers = {{"Host", "h"},
               {"Accept-Encoding", "gzip"},
               {"Connection", "keep-alive"},
               {"X-Z", "1"},
               {"Content-Type", "application/json"},
               {"Authorization", "Bearer t"}};
  p.body = "{}";
  p.http10 = true;
  const FrontRequest r = MakeFrontRequest(std::move(p));
  EXPECT_EQ(r.target, "/a%20b/c?x=1&y=%2F");
  EXPECT_EQ(r.path, "/a b/c");
  EXPECT_EQ(r.request.method, "POST");
  EXPECT_EQ(r.request.path, "/a%20b/c");
  EXPECT_EQ(r.request.query, "x=1&y=%2F");
  // Hop-by-hop headers and Accept-Encoding are not the request's.
  const HeaderList expected = {{"Host", "h"},
                               {"X-Z", "1"},
                               {"Content-Type", "application/json"},
                               {"Authorization", "Bearer t"}};
  EXPECT_EQ(r.request.headers, expected);
  EXPECT_EQ(r.request.body, "{}");
  EXPECT_TRUE(r.http10);
}

TEST(QueryParam, FindsDecodedValues) {
  std::string v;
  EXPECT_TRUE(QueryParam("a=1&scope=my%20run", "scope", &v));
  EXPECT_EQ(v, "my run");
  EXPECT_FALSE(QueryParam("a=1", "scope", &v));
  EXPECT_FALSE(QueryParam("", "scope", &v));
}

}  // namespace
}  // namespace rwd

#include "http/request_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace rwd {
namespace {

using State = RequestParser::State;

// Feeds "wire" one byte at a time, as a slow client would.
State ParseByteByByte(RequestParser* p, const std::string& wire) {
  State s = State::kIncomplete;
  for (size_t n = 1; n <= wire.size(); ++n) {
    s = p->Parse(std::string_view(wire).substr(0, n));
    if (s != State::kIncomplete) return s;
  }
  return s;
}

TEST(RequestParser, GivesTheRequestAsSentWithItsBodyDecoded) {
  RequestParser p{RequestLimits{}};
  const std::string wire =
      "\r\nPOST /v1/chat?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type:  "
      "application/json \r\n"
      "X-Tab:\tv\r\nContent-Length: 2\r\n\r\n{}";
  ASSERT_EQ(p.Parse(wire), State::kComplete);
  EXPECT_EQ(p.consumed(), wire.size());
  ParsedRequest r = p.Take();
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/v1/chat?x=1");
  // In their order, values trimmed; Content-Length is the parser's.
  const HeaderList expected = {
      {"Host", "a"}, {"Content-Type", "application/json"}, {"X-Tab", "v"}};
  EXPECT_EQ(r.headers, expected);
  EXPECT_EQ(r.body, "{}");
  EXPECT_FALSE(r.http10);
  EXPECT_FALSE(r.close);
  EXPECT_EQ(ToWire(r),
            "POST /v1/chat?x=1 HTTP/1.1\r\nHost: a\r\n"
            "Content-Type: application/json\r\nX-Tab: v\r\n"
            "Content-Length: 2\r\n\r\n{}");
}

TEST(RequestParser, ByteByByteGivesWhatOneReadGives) {
  const std::string wires[] = {
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2;a=b\r\nhe\r\n3\r\nllo\r\n0\r\nTrailer-X: 1\r\n\r\n",
  };
  for (const std::string& wire : wires) {
    RequestParser whole{RequestLimits{}};
    RequestParser slow{RequestLimits{}};
    ASSERT_EQ(whole.Parse(wire), State::kComplete) << wire;
    ASSERT_EQ(ParseByteByByte(&slow, wire), State::kComplete) << wire;
    EXPECT_EQ(slow.consumed(), wire.size());
    EXPECT_EQ(ToWire(whole.Take()), ToWire(slow.Take()));
  }
}

TEST(RequestParser, ChunkedBodiesAreDecoded) {
  RequestParser p{RequestLimits{}};
  const std::string wire =
      "POST /x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
      "A\r\n0123456789\r\n0\r\n\r\n";
  ASSERT_EQ(p.Parse(wire), State::kComplete);
  ParsedRequest r = p.Take();
  EXPECT_EQ(r.body, "0123456789");
  EXPECT_TRUE(r.headers.empty());
  EXPECT_EQ(ToWire(r),
            "POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789");
}

TEST(RequestParser, PipelinedRequestsAreTakenOneAtATime) {
  const std::string a = "GET /a HTTP/1.1\r\n\r\n";
  const std::string b = "POST /b HTTP/1.1\r\nContent-Length: 1\r\n\r\nx";
  std::string wire = a + b;
  RequestParser p{RequestLimits{}};
  ASSERT_EQ(p.Parse(wire), State::kComplete);
  EXPECT_EQ(p.consumed(), a.size());
  EXPECT_EQ(p.Take().method, "GET");
  wire.erase(0, a.size());
  ASSERT_EQ(p.Parse(wire), State::kComplete);
  EXPECT_EQ(p.consumed(), b.size());
  EXPECT_EQ(p.Take().method, "POST");
}

TEST(RequestParser, AnyMethodIsTakenAndAnyMethodCarriesItsBody) {
  RequestParser p{RequestLimits{}};
  ASSERT_EQ(p.Parse("PROPFIND /d HTTP/1.1\r\n\r\n"), State::kComplete);
  ParsedRequest r = p.Take();
  EXPECT_EQ(r.method, "PROPFIND");
  EXPECT_EQ(r.target, "/d");
  ASSERT_EQ(p.Parse("GET /q HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"),
            State::kComplete);
  r = p.Take();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.body, "x");
}

TEST(RequestParser, Http10ClosesUnlessKeepAlive) {
  RequestParser p{RequestLimits{}};
  ASSERT_EQ(p.Parse("GET / HTTP/1.0\r\n\r\n"), State::kComplete);
  ParsedRequest r = p.Take();
  EXPECT_TRUE(r.http10);
  EXPECT_TRUE(r.close);
  ASSERT_EQ(p.Parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
            State::kComplete);
  EXPECT_FALSE(p.Take().close);
  ASSERT_EQ(p.Parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n"),
            State::kComplete);
  EXPECT_TRUE(p.Take().close);
}

TEST(RequestParser, ExpectContinueIsAskedOnlyWhileTheBodyIsMissing) {
  RequestParser p{RequestLimits{}};
  const std::string head =
      "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  ASSERT_EQ(p.Parse(head), State::kIncomplete);
  EXPECT_TRUE(p.wants_continue());
  p.continue_sent();
  EXPECT_FALSE(p.wants_continue());
  ASSERT_EQ(p.Parse(head + "{}"), State::kComplete);
  const ParsedRequest r = p.Take();
  EXPECT_EQ(ToWire(r).find("Expect"), std::string::npos);
  EXPECT_EQ(r.body, "{}");
}

TEST(RequestParser, RefusesWhatAProxyMustNotGuess) {
  struct Case {
    std::string wire;
    int status;
  };
  RequestLimits small;
  small.max_body = 10;
  const Case cases[] = {
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n: empty\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET / HTTX/1.1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
       400},
      {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: "
       "1\r\n\r\n",
       400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nB\r\n", 413},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 400},
      {"POST / HTTP/1.1\r\nExpect: magic\r\n\r\n", 417},
      {"POST / HTTP/1.1\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n", 400},
      {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      // Never whole: refused at once rather than at --client-timeout.
      {"GET / HTTP/1.1\nHost: a\n\n", 400},
      {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400},
  };
  for (const Case& c : cases) {
    RequestParser p{small};
    EXPECT_EQ(ParseByteByByte(&p, c.wire), State::kError) << c.wire;
    EXPECT_EQ(p.status(), c.status) << c.wire << p.message();
    EXPECT_FALSE(p.message().empty());
  }
}

TEST(RequestParser, AnHttp10ExpectIsIgnored) {
  RequestParser p{RequestLimits{}};
  ASSERT_EQ(p.Parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
                    "Content-Length: 2\r\n\r\n"),
            State::kIncomplete);
  EXPECT_FALSE(p.wants_continue());
}

TEST(RequestParser, HeadLimitsAreEnforcedBeforeTheHeadEnds) {
  RequestLimits limits;
  limits.max_head = 1024;
  RequestParser p{limits};
  std::string wire = "GET / HTTP/1.1\r\n";
  while (wire.size() < 2000) wire += "X-A: b\r\n";
  EXPECT_EQ(p.Parse(wire), State::kError);
  EXPECT_EQ(p.status(), 431);
  RequestParser q{RequestLimits{}};
  EXPECT_EQ(q.Parse("GET /" + std::string(9000, 'a')), State::kError);
  EXPECT_EQ(q.status(), 414);
}

TEST(RequestParser, RejectionIsACompleteJsonAnswer) {
  const std::string r = RejectionResponse(431, "too \"many\" headers");
  EXPECT_EQ(r.rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0), 0u);
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos);
  const std::string body = r.substr(r.find("\r\n\r\n") + 4);
  EXPECT_NE(r.find("Content-Length: " + std::to_string(body.size()) + "\r\n"),
            std::string::npos);
  EXPECT_NE(body.find("too \\\"many\\\" headers"), std::string::npos);
}

}  // namespace
}  // namespace rwd

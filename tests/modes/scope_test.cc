#include "modes/scope.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace rwd {
namespace {

TEST(ScopeName, OneTo128UnreservedCharacters) {
  EXPECT_TRUE(CheckScopeName("a").ok());
  EXPECT_TRUE(CheckScopeName("tests.test_chat.py__test_hello-1~x").ok());
  EXPECT_TRUE(CheckScopeName(std::string(128, 'x')).ok());
  EXPECT_FALSE(CheckScopeName("").ok());
  Status too_long = CheckScopeName(std::string(129, 'x'));
  EXPECT_FALSE(too_long.ok());
  EXPECT_NE(too_long.message().find("at most 128"), std::string::npos)
      << too_long.message();
  for (const char* bad :
       {"a b", "a/b", "a%2Fb", "a?b", "caf\xc3\xa9", "a\r\nX: y", "a:b"}) {
    Status s = CheckScopeName(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("A-Z a-z 0-9 . _ ~ -"), std::string::npos)
        << s.message();
    EXPECT_EQ(s.message().find('\r'), std::string::npos)
        << "the name is quoted";
  }
}

TEST(ScopeName, ThePrefixIsSplitFromThePath) {
  Result<ScopedPath> p = SplitScope("/__scope/t1/v1/chat/completions");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->scope, "t1");
  EXPECT_EQ(p->path, "/v1/chat/completions");
  p = SplitScope("/__scope/t1");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->scope, "t1");
  EXPECT_EQ(p->path, "/");
  p = SplitScope("/__scope/t1/");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->path, "/");
  // Only one prefix is taken off: the rest is the client's path.
  p = SplitScope("/__scope/a/__scope/b/v1");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->scope, "a");
  EXPECT_EQ(p->path, "/__scope/b/v1");
  for (const char* plain : {"/v1/chat/completions", "/", "/__scope",
                            "/__scopes/a/v1", "/x/__scope/a/"}) {
    p = SplitScope(plain);
    ASSERT_TRUE(p.ok()) << plain;
    EXPECT_EQ(p->scope, "") << plain;
    EXPECT_EQ(p->path, plain);
  }
  EXPECT_FALSE(SplitScope("/__scope//v1").ok());
  EXPECT_FALSE(SplitScope("/__scope/").ok());
  EXPECT_FALSE(SplitScope("/__scope/a%20b/v1").ok());
  EXPECT_FALSE(SplitScope("/__scope/" + std::string(129, 'a') + "/v1").ok());
}

TEST(Scope, ResetStartsItsCountsAndServedSetOver) {
  Scope s("t");
  RequestKey k{1, 2};
  EXPECT_EQ(s.replay.Next(k), 0u);
  EXPECT_EQ(s.replay.Next(k), 1u);
  EXPECT_EQ(s.convert.Next(k), 0u);
  s.MarkServed(7);
  s.dropped = 3;
  EXPECT_EQ(s.Served().count(7), 1u);
  s.Reset();
  EXPECT_EQ(s.replay.Next(k), 0u);
  EXPECT_EQ(s.convert.Next(k), 0u);
  EXPECT_TRUE(s.Served().empty());
  EXPECT_EQ(s.dropped.load(), 0u);
}

TEST(ScopeRegistry, OneScopePerNameMadeAtFirstUse) {
  ScopeRegistry r;
  EXPECT_EQ(r.Find("a"), nullptr);
  std::shared_ptr<Scope> a = r.Get("a");
  EXPECT_EQ(r.Get("a"), a);
  EXPECT_EQ(r.Find("a"), a);
  EXPECT_NE(r.Get("b"), a);
  EXPECT_EQ(r.size(), 2u);
  r.Clear();
  EXPECT_EQ(r.Find("a"), nullptr);
  EXPECT_EQ(r.size(), 0u);
}

TEST(ScopeRegistry, BoundedTheLeastRecentlyUsedAreForgotten) {
  ScopeRegistry r(16);
  for (int i = 0; i < 16; ++i) r.Get("s" + std::to_string(i));
  r.Get("s0");  // used again: the newest
  for (int i = 16; i < 1000; ++i) {
    r.Get("s" + std::to_string(i));
    r.Get("s0");
    EXPECT_LE(r.size(), 16u);
  }
  EXPECT_NE(r.Find("s0"), nullptr);
  EXPECT_NE(r.Find("s999"), nullptr);
  EXPECT_EQ(r.Find("s1"), nullptr);
}

TEST(ScopeRegistry, SafeForConcurrentUse) {
  ScopeRegistry r(64);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < 2000; ++i) {
        std::shared_ptr<Scope> s =
            r.Get("s" + std::to_string((i * 7 + t) % 100));
        s->replay.Next(RequestKey{1, 1});
        s->MarkServed(i);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(r.size(), 64u);
}

}  // namespace
}  // namespace rwd

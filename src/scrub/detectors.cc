#include "scrub/detectors.h"

#include <arpa/inet.h>
#include <re2/re2.h>
#include <strings.h>

#include <algorithm>
#include <cstring>

namespace rwd::scrub {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsAlpha(char c) { return IsUpper(c) || IsLower(c); }
bool IsAlnum(char c) { return IsAlpha(c) || IsDigit(c); }
bool IsHex(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool IsLowerHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f'); }

// The character before position i, or '\0' at the start.
char Before(std::string_view s, size_t i) { return i == 0 ? '\0' : s[i - 1]; }
// The character at position i, or '\0' past the end.
char At(std::string_view s, size_t i) { return i < s.size() ? s[i] : '\0'; }

bool IsEmailLocal(char c) {
  return IsAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
bool IsDomainChar(char c) { return IsAlnum(c) || c == '-' || c == '.'; }

// A domain of at least two labels, none empty or starting or ending with
// '-', the last of two or more letters (or an IDN "xn--" label).
bool ValidDomain(std::string_view d) {
  size_t dots = 0;
  size_t start = 0;
  while (true) {
    size_t dot = d.find('.', start);
    std::string_view label =
        d.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' ||
        label.back() == '-') {
      return false;
    }
    if (dot == std::string_view::npos) {
      if (dots == 0) return false;
      if (label.size() >= 4 && label.substr(0, 4) == "xn--") return true;
      if (label.size() < 2) return false;
      for (char c : label) {
        if (!IsAlpha(c)) return false;
      }
      return true;
    }
    ++dots;
    start = dot + 1;
  }
}

// [A-Za-z0-9_-], by table: the token scanner tests every byte.
struct TokenBodyTable {
  bool of[256] = {};
  TokenBodyTable() {
    for (int c = 0; c < 256; ++c) {
      of[c] = IsAlnum(static_cast<char>(c)) || c == '_' || c == '-';
    }
  }
};
const TokenBodyTable kTokenBody;
bool IsTokenBody(char c) {
  return kTokenBody.of[static_cast<unsigned char>(c)];
}

// Length of the run of characters from i for which pred holds.
template <typename Pred>
size_t RunLength(std::string_view s, size_t i, Pred pred) {
  size_t j = i;
  while (j < s.size() && pred(s[j])) ++j;
  return j - i;
}

bool StartsWith(std::string_view s, size_t i, std::string_view prefix) {
  return s.size() - i >= prefix.size() && s.substr(i, prefix.size()) == prefix;
}

struct Country {
  char code[3];
  int length;
};
// ISO 13616 lengths by country (the SWIFT IBAN registry).
constexpr Country kIbanLengths[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20},
    {"BE", 16}, {"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28},
    {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
    {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23},
    {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22},
    {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30},
    {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20},
    {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19},
    {"MN", 20}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18},
    {"NO", 15}, {"OM", 23}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25},
    {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24}, {"SC", 31},
    {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23},
    {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29},
    {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

int IbanLength(char a, char b) {
  for (const Country& c : kIbanLengths) {
    if (c.code[0] == a && c.code[1] == b) return c.length;
  }
  return 0;
}

const char* BuiltinName(int i) {
  static const char* kNames[] = {"email", "phone", "card", "ipv4",
                                 "ipv6",  "iban",  "token"};
  return kNames[i];
}
constexpr int kBuiltinCount = 7;

bool ValidPatternName(std::string_view name) {
  if (name.empty() || name.size() > 32 || !IsLower(name[0])) return false;
  for (char c : name) {
    if (!IsLower(c) && !IsDigit(c) && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace

const std::vector<std::string>& BuiltinKinds() {
  static const std::vector<std::string> kinds = [] {
    std::vector<std::string> v;
    for (int i = 0; i < kBuiltinCount; ++i) v.emplace_back(BuiltinName(i));
    return v;
  }();
  return kinds;
}

Result<std::vector<std::string>> ParseKinds(std::string_view list) {
  std::vector<bool> chosen(kBuiltinCount, false);
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view word = list.substr(start, comma - start);
    while (!word.empty() && word.front() == ' ') word.remove_prefix(1);
    while (!word.empty() && word.back() == ' ') word.remove_suffix(1);
    if (!word.empty()) {
      bool known = false;
      for (int i = 0; i < kBuiltinCount; ++i) {
        if (word == BuiltinName(i) || word == "all" ||
            (word == "ip" && (i == 3 || i == 4))) {
          chosen[static_cast<size_t>(i)] = true;
          known = true;
        }
      }
      if (!known) {
        return Status::InvalidArgument(
            "unknown scrub kind \"" + std::string(word) +
            "\"; known: email, phone, card, ipv4, ipv6, ip (both), iban, "
            "token, all");
      }
    }
    start = comma + 1;
  }
  std::vector<std::string> kinds;
  for (int i = 0; i < kBuiltinCount; ++i) {
    if (chosen[static_cast<size_t>(i)]) kinds.emplace_back(BuiltinName(i));
  }
  if (kinds.empty()) {
    return Status::InvalidArgument(
        "--scrub needs at least one kind: email, phone, card, ipv4, ipv6, "
        "ip, iban, token or all");
  }
  return kinds;
}

bool LuhnValid(std::string_view digits) {
  int sum = 0;
  bool twice = false;
  for (size_t i = digits.size(); i-- > 0;) {
    int d = digits[i] - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return !digits.empty() && sum % 10 == 0;
}

bool IbanValid(std::string_view compact) {
  if (compact.size() < 15 || compact.size() > 34) return false;
  int remainder = 0;
  auto feed = [&remainder](char c) {
    if (IsDigit(c)) {
      remainder = (remainder * 10 + (c - '0')) % 97;
    } else if (IsUpper(c)) {
      int v = c - 'A' + 10;
      remainder = (remainder * 100 + v) % 97;
    } else {
      remainder = -1000;  // not an IBAN character
    }
  };
  for (size_t i = 4; i < compact.size(); ++i) feed(compact[i]);
  for (size_t i = 0; i < 4; ++i) feed(compact[i]);
  return remainder == 1;
}

void FindEmails(std::string_view s, int detector, std::vector<Match>* out) {
  size_t at = s.find('@');
  while (at != std::string_view::npos) {
    size_t next = at + 1;
    size_t b = at;
    while (b > 0 && IsEmailLocal(s[b - 1])) --b;
    while (b < at && s[b] == '.') ++b;
    if (b < at && s[at - 1] != '.') {
      size_t e = at + 1;
      while (e < s.size() && IsDomainChar(s[e])) ++e;
      // Trailing dots and hyphens end a sentence, not the domain; then
      // shorten label by label until the rest is a domain.
      while (e > at + 1) {
        while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == '-')) --e;
        if (ValidDomain(s.substr(at + 1, e - at - 1))) break;
        size_t dot = s.rfind('.', e - 1);
        if (dot == std::string_view::npos || dot <= at) {
          e = at + 1;
          break;
        }
        e = dot;
      }
      if (e > at + 1) {
        out->push_back({b, e, detector});
        next = e;
      }
    }
    at = s.find('@', next);
  }
}

namespace {

// International: '+', then 8-15 digits in groups separated by one space,
// '-' or '.', or in parentheses. Returns the end, or 0.
size_t InternationalPhone(std::string_view s, size_t i) {
  size_t j = i + 1;
  if (j >= s.size() || !IsDigit(s[j]) || s[j] == '0') return 0;
  int digits = 0;
  size_t end = 0;
  bool in_paren = false;
  while (j < s.size()) {
    char c = s[j];
    if (IsDigit(c)) {
      ++digits;
      if (digits > 15) return 0;
      ++j;
      if (!in_paren) end = j;
      continue;
    }
    char next = At(s, j + 1);
    if ((c == ' ' || c == '-' || c == '.') && IsDigit(Before(s, j)) &&
        (IsDigit(next) || next == '(')) {
      ++j;
    } else if (c == '(' && !in_paren && IsDigit(next) &&
               (Before(s, j) == ' ' || IsDigit(Before(s, j)))) {
      in_paren = true;
      ++j;
    } else if (c == ')' && in_paren && IsDigit(Before(s, j)) &&
               (IsDigit(next) || next == ' ' || next == '-')) {
      in_paren = false;
      ++j;
      if (next == ' ' || next == '-') {
        if (!IsDigit(At(s, j + 1))) break;
        ++j;
      }
    } else {
      break;
    }
  }
  if (end == 0) return 0;
  // Count the digits up to end.
  int counted = 0;
  for (size_t k = i; k < end; ++k) counted += IsDigit(s[k]) ? 1 : 0;
  if (counted < 8 || counted > 15) return 0;
  if (IsAlnum(At(s, end))) return 0;
  return end;
}

bool Digits(std::string_view s, size_t i, size_t n) {
  if (s.size() < i + n) return false;
  for (size_t k = i; k < i + n; ++k) {
    if (!IsDigit(s[k])) return false;
  }
  return true;
}

// North-American 3-3-4: "(415) 555-0132", "(415)555-0132", "415-555-0132",
// "415.555.0132", "415 555 0132"; area code and exchange start with 2-9.
size_t NorthAmericanPhone(std::string_view s, size_t i) {
  size_t j = i;
  bool paren = s[j] == '(';
  if (paren) ++j;
  if (!Digits(s, j, 3) || s[j] < '2') return 0;
  j += 3;
  char sep;
  if (paren) {
    if (At(s, j) != ')') return 0;
    ++j;
    if (At(s, j) == ' ') ++j;
    sep = '-';
    if (!Digits(s, j, 3) || s[j] < '2') return 0;
    j += 3;
    char c = At(s, j);
    if (c != '-' && c != ' ' && c != '.') return 0;
    ++j;
  } else {
    sep = At(s, j);
    if (sep != '-' && sep != '.' && sep != ' ') return 0;
    ++j;
    if (!Digits(s, j, 3) || s[j] < '2') return 0;
    j += 3;
    if (At(s, j) != sep) return 0;
    ++j;
  }
  if (!Digits(s, j, 4)) return 0;
  j += 4;
  char after = At(s, j);
  if (IsAlnum(after)) return 0;
  if ((after == '-' || after == '.' || after == sep) && IsDigit(At(s, j + 1))) {
    return 0;
  }
  return j;
}

}  // namespace

void FindPhones(std::string_view s, int detector, std::vector<Match>* out) {
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    char before = Before(s, i);
    size_t end = 0;
    if (c == '+' && !IsAlnum(before) && before != '+') {
      end = InternationalPhone(s, i);
    } else if ((IsDigit(c) || c == '(') && !IsAlnum(before) && before != '+' &&
               before != '.' && before != '-' && before != '(') {
      end = NorthAmericanPhone(s, i);
    }
    if (end > i) {
      out->push_back({i, end, detector});
      i = end;
      continue;
    }
    // Skip the rest of a number or word: a phone starts at its beginning.
    if (IsAlnum(c)) {
      while (i < s.size() && IsAlnum(s[i])) ++i;
    } else {
      ++i;
    }
  }
}

void FindCards(std::string_view s, int detector, std::vector<Match>* out) {
  size_t i = 0;
  std::string digits;
  std::vector<std::pair<size_t, size_t>> group_ends;  // (position, digits)
  while (i < s.size()) {
    if (!IsDigit(s[i]) || IsAlnum(Before(s, i)) || Before(s, i) == '.' ||
        Before(s, i) == '_') {
      if (IsAlnum(s[i])) {
        while (i < s.size() && IsAlnum(s[i])) ++i;
      } else {
        ++i;
      }
      continue;
    }
    digits.clear();
    group_ends.clear();
    size_t j = i;
    bool too_long = false;
    while (j < s.size()) {
      size_t run = RunLength(s, j, IsDigit);
      digits.append(s.substr(j, run));
      j += run;
      if (digits.size() > 19) {
        too_long = true;
        break;
      }
      group_ends.emplace_back(j, digits.size());
      char c = At(s, j);
      if ((c == ' ' || c == '-') && IsDigit(At(s, j + 1))) {
        ++j;
      } else {
        break;
      }
    }
    size_t found = 0;
    {
      // Longest first; a decimal or a longer word is not a card.
      for (size_t g = group_ends.size(); g-- > 0;) {
        auto [pos, n] = group_ends[g];
        if (n < 13 || n > 19) continue;
        if (g + 1 == group_ends.size() && !too_long) {
          char after = At(s, pos);
          if (IsAlpha(after) || after == '_') continue;
          if (after == '.' && IsDigit(At(s, pos + 1))) continue;
        }
        std::string_view cand(digits.data(), n);
        if (cand[0] < '2' || cand[0] > '6' || !LuhnValid(cand)) continue;
        found = pos;
        break;
      }
    }
    if (found > 0) {
      out->push_back({i, found, detector});
      i = found;
    } else {
      // Past this number (and its groups) entirely.
      i = std::max(j, i + 1);
      while (i < s.size() && IsAlnum(s[i])) ++i;
    }
  }
}

namespace {

// One octet at i: 0-255 without leading zeros; returns its length or 0.
size_t Octet(std::string_view s, size_t i) {
  size_t n = RunLength(s, i, IsDigit);
  if (n == 0 || n > 3) return 0;
  if (n > 1 && s[i] == '0') return 0;
  int v = 0;
  for (size_t k = i; k < i + n; ++k) v = v * 10 + (s[k] - '0');
  return v <= 255 ? n : 0;
}

}  // namespace

void FindIpv4(std::string_view s, int detector, std::vector<Match>* out) {
  size_t i = 0;
  while (i < s.size()) {
    char before = Before(s, i);
    if (!IsDigit(s[i]) || IsAlnum(before) || before == '.' || before == '_') {
      ++i;
      continue;
    }
    size_t j = i;
    bool ok = true;
    for (int part = 0; part < 4 && ok; ++part) {
      if (part > 0) {
        if (At(s, j) != '.') {
          ok = false;
          break;
        }
        ++j;
      }
      size_t n = Octet(s, j);
      if (n == 0) ok = false;
      j += n;
    }
    if (ok) {
      char after = At(s, j);
      if (IsAlnum(after) || after == '_' ||
          (after == '.' && IsDigit(At(s, j + 1)))) {
        ok = false;
      }
    }
    if (ok) {
      out->push_back({i, j, detector});
      i = j;
    } else {
      while (i < s.size() && (IsDigit(s[i]) || s[i] == '.')) ++i;
    }
  }
}

void FindIpv6(std::string_view s, int detector, std::vector<Match>* out) {
  auto in_run = [](char c) { return IsHex(c) || c == ':' || c == '.'; };
  size_t i = 0;
  while (i < s.size()) {
    char before = Before(s, i);
    if (!in_run(s[i]) || IsAlnum(before) || before == '_' || before == ':' ||
        before == '.') {
      ++i;
      continue;
    }
    size_t j = i + RunLength(s, i, in_run);
    char after = At(s, j);
    bool found = false;
    size_t colons =
        static_cast<size_t>(std::count(s.begin() + i, s.begin() + j, ':'));
    if (colons >= 2 && j - i <= 45 && !IsAlnum(after) && after != '_') {
      char buf[64];
      unsigned char addr[16];
      // The whole run, then without a trailing '.' or ':' (a sentence's end).
      for (size_t end = j; end > i && end + 2 >= j && !found; --end) {
        bool has_hex = false;
        for (size_t k = i; k < end; ++k) has_hex |= IsHex(s[k]);
        if (!has_hex) break;
        std::memcpy(buf, s.data() + i, end - i);
        buf[end - i] = '\0';
        if (inet_pton(AF_INET6, buf, addr) == 1) {
          out->push_back({i, end, detector});
          found = true;
        }
        if (s[end - 1] != '.' && s[end - 1] != ':') break;
      }
    }
    i = j;
  }
}

void FindIbans(std::string_view s, int detector, std::vector<Match>* out) {
  size_t i = 0;
  std::string compact;
  while (i + 4 <= s.size()) {
    if (!IsUpper(s[i]) || !IsUpper(s[i + 1]) || !IsDigit(s[i + 2]) ||
        !IsDigit(s[i + 3]) || IsAlnum(Before(s, i))) {
      ++i;
      continue;
    }
    int length = IbanLength(s[i], s[i + 1]);
    if (length == 0) {
      ++i;
      continue;
    }
    compact.clear();
    size_t j = i;
    bool grouped = false;
    while (j < s.size() && compact.size() < static_cast<size_t>(length)) {
      char c = s[j];
      if (IsUpper(c) || IsDigit(c)) {
        compact.push_back(c);
        ++j;
      } else if (c == ' ' && compact.size() % 4 == 0 &&
                 (grouped || compact.size() == 4) &&
                 (IsUpper(At(s, j + 1)) || IsDigit(At(s, j + 1)))) {
        grouped = true;
        ++j;
      } else {
        break;
      }
    }
    if (compact.size() == static_cast<size_t>(length) && !IsAlnum(At(s, j)) &&
        IbanValid(compact)) {
      out->push_back({i, j, detector});
      i = j;
    } else {
      i += 2;
    }
  }
}

namespace {

bool IsBearerChar(char c) {
  return IsAlnum(c) || c == '.' || c == '_' || c == '~' || c == '+' ||
         c == '/' || c == '=' || c == '-';
}
bool IsB64Url(char c) { return IsAlnum(c) || c == '_' || c == '-'; }
bool IsAlnumUnderscore(char c) { return IsAlnum(c) || c == '_'; }
bool IsAlnumDash(char c) { return IsAlnum(c) || c == '-'; }
bool IsUpperDigit(char c) { return IsUpper(c) || IsDigit(c); }

struct Shape {
  std::string_view prefix;
  bool (*body)(char);
  size_t min;
  size_t exact;  // 0: at least min
};

constexpr Shape kShapes[] = {
    {"sk-", IsTokenBody, 20, 0},
    {"sk_live_", IsAlnum, 16, 0},
    {"sk_test_", IsAlnum, 16, 0},
    {"rk_live_", IsAlnum, 16, 0},
    {"rk_test_", IsAlnum, 16, 0},
    {"ghp_", IsAlnum, 30, 0},
    {"gho_", IsAlnum, 30, 0},
    {"ghu_", IsAlnum, 30, 0},
    {"ghs_", IsAlnum, 30, 0},
    {"ghr_", IsAlnum, 30, 0},
    {"github_pat_", IsAlnumUnderscore, 30, 0},
    {"xoxb-", IsAlnumDash, 10, 0},
    {"xoxp-", IsAlnumDash, 10, 0},
    {"xoxa-", IsAlnumDash, 10, 0},
    {"xoxr-", IsAlnumDash, 10, 0},
    {"xoxs-", IsAlnumDash, 10, 0},
    {"AKIA", IsUpperDigit, 16, 16},
    {"ASIA", IsUpperDigit, 16, 16},
    {"AIza", IsB64Url, 35, 35},
    {"hf_", IsAlnum, 30, 0},
    {"glpat-", IsTokenBody, 20, 0},
};

// A JWT: header and payload base64url JSON objects ("eyJ"...), a signature
// (possibly empty, for alg "none").
size_t Jwt(std::string_view s, size_t i) {
  size_t j = i;
  for (int part = 0; part < 2; ++part) {
    if (!StartsWith(s, j, "eyJ")) return 0;
    size_t n = RunLength(s, j, IsB64Url);
    if (n < 10) return 0;
    j += n;
    if (At(s, j) != '.') return 0;
    ++j;
  }
  j += RunLength(s, j, IsB64Url);
  return j;
}

}  // namespace

void FindTokens(std::string_view s, int detector, std::vector<Match>* out) {
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (!IsTokenBody(c)) {
      ++i;
      continue;
    }
    // A word: only one that starts with these letters, and is long enough
    // (the shortest shape has 15 characters) or is "Bearer", can be or
    // announce a token.
    size_t word = RunLength(s, i, IsTokenBody);
    if ((word < 15 && word != 6) || IsTokenBody(Before(s, i)) ||
        (c != 'e' && c != 'B' && c != 'b' && c != 's' && c != 'r' && c != 'g' &&
         c != 'x' && c != 'A' && c != 'h')) {
      i += word;
      continue;
    }
    size_t end = 0;
    size_t begin = i;
    if (c == 'e') end = Jwt(s, i);
    if (end == 0 && (c == 'B' || c == 'b') && i + 7 < s.size() &&
        strncasecmp(s.data() + i, "bearer ", 7) == 0) {
      size_t j = i + 7;
      while (At(s, j) == ' ') ++j;
      size_t n = RunLength(s, j, IsBearerChar);
      if (n >= 16) {
        begin = j;
        end = j + n;
      }
    }
    for (const Shape& shape : kShapes) {
      if (end != 0) break;
      if (shape.prefix[0] != c || !StartsWith(s, i, shape.prefix)) continue;
      size_t j = i + shape.prefix.size();
      size_t n = RunLength(s, j, shape.body);
      if (n < shape.min || (shape.exact != 0 && n != shape.exact)) continue;
      if (IsTokenBody(At(s, j + n)) && shape.exact != 0) continue;
      end = j + n;
    }
    if (end > begin) {
      out->push_back({begin, end, detector});
      i = end;
    } else {
      while (i < s.size() && IsTokenBody(s[i])) ++i;
    }
  }
}

Detectors::~Detectors() = default;

std::shared_ptr<const Detectors> Detectors::PlaceholdersOnly() const {
  std::shared_ptr<Detectors> d(new Detectors());
  d->names_ = names_;
  return d;
}

Result<std::shared_ptr<const Detectors>> Detectors::Make(
    const std::vector<std::string>& kinds,
    const std::vector<std::string>& patterns) {
  std::shared_ptr<Detectors> d(new Detectors());
  for (const std::string& kind : kinds) {
    int index = -1;
    for (int i = 0; i < kBuiltinCount; ++i) {
      if (kind == BuiltinName(i)) index = i;
    }
    if (index < 0) {
      return Status::InvalidArgument("unknown scrub kind \"" + kind + "\"");
    }
    Entry e;
    e.kind = static_cast<Builtin>(index);
    d->names_.push_back(kind);
    d->entries_.push_back(std::move(e));
  }
  for (const std::string& spec : patterns) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument("--scrub-pattern \"" + spec +
                                     "\" is not NAME=REGEX");
    }
    std::string name = spec.substr(0, eq);
    std::string expr = spec.substr(eq + 1);
    if (!ValidPatternName(name)) {
      return Status::InvalidArgument(
          "--scrub-pattern name \"" + name +
          "\" must be lowercase letters, digits, '_' or '-', starting with a "
          "letter, at most 32 characters");
    }
    if (std::find(d->names_.begin(), d->names_.end(), name) !=
            d->names_.end() ||
        std::find(BuiltinKinds().begin(), BuiltinKinds().end(), name) !=
            BuiltinKinds().end()) {
      return Status::InvalidArgument("--scrub-pattern name \"" + name +
                                     "\" is already a detector's name");
    }
    RE2::Options options;
    options.set_log_errors(false);
    options.set_max_mem(16 << 20);
    auto regex = std::make_unique<re2::RE2>(expr, options);
    if (!regex->ok()) {
      return Status::InvalidArgument("--scrub-pattern " + name + ": " +
                                     regex->error());
    }
    if (RE2::FullMatch("", *regex)) {
      return Status::InvalidArgument("--scrub-pattern " + name +
                                     " matches the empty string");
    }
    Entry e;
    e.builtin = false;
    e.regex = std::move(regex);
    d->names_.push_back(name);
    d->entries_.push_back(std::move(e));
  }
  return std::shared_ptr<const Detectors>(std::move(d));
}

void Detectors::FindBuiltin(Builtin kind, int detector, std::string_view text,
                            std::vector<Match>* out) const {
  switch (kind) {
    case Builtin::kEmail:
      FindEmails(text, detector, out);
      break;
    case Builtin::kPhone:
      FindPhones(text, detector, out);
      break;
    case Builtin::kCard:
      FindCards(text, detector, out);
      break;
    case Builtin::kIpv4:
      FindIpv4(text, detector, out);
      break;
    case Builtin::kIpv6:
      FindIpv6(text, detector, out);
      break;
    case Builtin::kIban:
      FindIbans(text, detector, out);
      break;
    case Builtin::kToken:
      FindTokens(text, detector, out);
      break;
  }
}

void Detectors::FindPattern(const re2::RE2& regex, int detector,
                            std::string_view text,
                            std::vector<Match>* out) const {
  const int groups = std::min(regex.NumberOfCapturingGroups(), 1);
  re2::StringPiece input(text.data(), text.size());
  re2::StringPiece sub[2];
  size_t pos = 0;
  while (pos <= text.size() && regex.Match(input, pos, text.size(),
                                           RE2::UNANCHORED, sub, groups + 1)) {
    const re2::StringPiece& whole = sub[0];
    const re2::StringPiece& part = groups == 1 ? sub[1] : sub[0];
    size_t whole_end =
        static_cast<size_t>(whole.data() - text.data()) + whole.size();
    if (part.data() != nullptr && !part.empty()) {
      size_t b = static_cast<size_t>(part.data() - text.data());
      out->push_back({b, b + part.size(), detector});
    }
    pos = whole.empty() ? whole_end + 1 : whole_end;
  }
}

void Detectors::FindPlaceholders(std::string_view s,
                                 std::vector<Match>* out) const {
  size_t lt = s.find('<');
  while (lt != std::string_view::npos) {
    size_t colon = s.find(':', lt + 1);
    size_t next = lt + 1;
    if (colon != std::string_view::npos && colon - lt - 1 <= 32 &&
        colon + 10 <= s.size() && s[colon + 9] == '>') {
      std::string_view name = s.substr(lt + 1, colon - lt - 1);
      bool hex = true;
      for (size_t k = colon + 1; k < colon + 9; ++k) hex &= IsLowerHex(s[k]);
      if (hex) {
        for (size_t d = 0; d < names_.size(); ++d) {
          if (names_[d] == name) {
            out->push_back({lt, colon + 10, -1 - static_cast<int>(d)});
            next = colon + 10;
            break;
          }
        }
      }
    }
    lt = s.find('<', next);
  }
}

namespace {

// What a text holds, counted in one pass: a built-in scanner runs only
// where its shape can occur (most of a prompt has no digit, '@' or ':').
// Which counter a byte feeds; 0 (most of any prose) none.
enum : uint8_t { kNone, kDigit, kAt, kColon, kDot, kUpper, kLt };
struct ClassTable {
  uint8_t of[256] = {};
  ClassTable() {
    for (int c = '0'; c <= '9'; ++c) of[c] = kDigit;
    for (int c = 'A'; c <= 'Z'; ++c) of[c] = kUpper;
    of[static_cast<int>('@')] = kAt;
    of[static_cast<int>(':')] = kColon;
    of[static_cast<int>('.')] = kDot;
    of[static_cast<int>('<')] = kLt;
  }
};
const ClassTable kClasses;

struct Census {
  size_t counts[7] = {};
  explicit Census(std::string_view s) {
    for (char c : s) ++counts[kClasses.of[static_cast<unsigned char>(c)]];
  }
  size_t digits() const { return counts[kDigit]; }
  size_t at() const { return counts[kAt]; }
  size_t colons() const { return counts[kColon]; }
  size_t dots() const { return counts[kDot]; }
  size_t upper() const { return counts[kUpper]; }
  size_t lt() const { return counts[kLt]; }
};

}  // namespace

bool Detectors::MayMatch(Builtin kind, const void* census_ptr) const {
  const Census& c = *static_cast<const Census*>(census_ptr);
  switch (kind) {
    case Builtin::kEmail:
      return c.at() > 0;
    case Builtin::kPhone:
      return c.digits() >= 8;
    case Builtin::kCard:
      return c.digits() >= 13;
    case Builtin::kIpv4:
      return c.digits() >= 4 && c.dots() >= 3;
    case Builtin::kIpv6:
      return c.colons() >= 2;
    case Builtin::kIban:
      return c.upper() >= 2 && c.digits() >= 2;
    case Builtin::kToken:
      return true;
  }
  return true;
}

void Detectors::Find(std::string_view text, std::vector<Match>* out) const {
  if (names_.empty() || text.empty()) return;
  if (entries_.empty()) {  // placeholders only
    if (text.find('<') != std::string_view::npos) FindPlaceholders(text, out);
    return;
  }
  const Census census(text);
  // Scratch space kept per thread: Find runs once per JSON string.
  thread_local std::vector<Match> placeholders;
  thread_local std::vector<Match> all;
  placeholders.clear();
  all.clear();
  if (census.lt() > 0) FindPlaceholders(text, &placeholders);
  for (size_t d = 0; d < entries_.size(); ++d) {
    const Entry& e = entries_[d];
    if (e.builtin) {
      if (MayMatch(e.kind, &census)) {
        FindBuiltin(e.kind, static_cast<int>(d), text, &all);
      }
    } else {
      FindPattern(*e.regex, static_cast<int>(d), text, &all);
    }
  }
  if (all.empty() && placeholders.empty()) return;
  std::sort(all.begin(), all.end(), [](const Match& a, const Match& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end > b.end;
    return a.detector < b.detector;
  });
  const size_t first = out->size();
  std::vector<Match>& chosen = *out;
  size_t p = 0;
  size_t last_end = 0;
  for (const Match& m : all) {
    if (m.begin < last_end) continue;
    while (p < placeholders.size() && placeholders[p].end <= m.begin) {
      chosen.push_back(placeholders[p]);
      last_end = std::max(last_end, placeholders[p].end);
      ++p;
    }
    if (p < placeholders.size() && placeholders[p].begin < m.end) continue;
    chosen.push_back(m);
    last_end = m.end;
  }
  for (; p < placeholders.size(); ++p) chosen.push_back(placeholders[p]);
  std::sort(chosen.begin() + static_cast<std::ptrdiff_t>(first), chosen.end(),
            [](const Match& a, const Match& b) { return a.begin < b.begin; });
}

bool Detectors::Any(std::string_view text) const {
  std::vector<Match> matches;
  Find(text, &matches);
  for (const Match& m : matches) {
    if (m.detector >= 0) return true;
  }
  return false;
}

}  // namespace rwd::scrub

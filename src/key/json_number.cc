// AppendCanonicalNumber (key/json.h): a JSON number's exact canonical text.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "key/json.h"

namespace rwd {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// "digits" + v, "digits" being a decimal number without leading zeros.
std::string AddSmall(std::string_view digits, uint64_t v) {
  std::string r;
  r.reserve(digits.size() + 21);
  size_t i = digits.size();
  uint64_t carry = 0;
  while (i > 0 || v > 0 || carry > 0) {
    uint64_t d = carry + v % 10;
    v /= 10;
    if (i > 0) d += static_cast<uint64_t>(digits[--i] - '0');
    r.push_back(static_cast<char>('0' + d % 10));
    carry = d / 10;
  }
  std::reverse(r.begin(), r.end());
  return r;
}

// "digits" - v, where "digits" (no leading zeros) is larger than v.
std::string SubtractSmall(std::string_view digits, uint64_t v) {
  std::string r;
  r.reserve(digits.size());
  size_t i = digits.size();
  int borrow = 0;
  while (i > 0) {
    int d = (digits[--i] - '0') - borrow - static_cast<int>(v % 10);
    v /= 10;
    borrow = d < 0 ? 1 : 0;
    if (d < 0) d += 10;
    r.push_back(static_cast<char>('0' + d));
  }
  while (r.size() > 1 && r.back() == '0') r.pop_back();
  std::reverse(r.begin(), r.end());
  return r;
}

}  // namespace

void AppendCanonicalNumber(std::string_view s, std::string* out) {
  // Most numbers in a request are small integers, already canonical.
  if (!s.empty() && s.size() <= 21 && s[0] >= '1' && s[0] <= '9' &&
      std::all_of(s.begin() + 1, s.end(), IsDigit)) {
    out->append(s);
    return;
  }
  size_t i = 0;
  const bool negative = i < s.size() && s[i] == '-';
  if (negative) ++i;
  const size_t int_begin = i;
  while (i < s.size() && IsDigit(s[i])) ++i;
  const std::string_view int_part = s.substr(int_begin, i - int_begin);
  std::string_view frac_part;
  if (i < s.size() && s[i] == '.') {
    const size_t begin = ++i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    frac_part = s.substr(begin, i - begin);
  }
  bool exp_negative = false;
  std::string_view exp_digits;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-'))
      exp_negative = s[i++] == '-';
    const size_t begin = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    exp_digits = s.substr(begin, i - begin);
  }
  // The value is D x 10^(X - |frac_part|), D = int_part then frac_part.
  const size_t len = int_part.size() + frac_part.size();
  auto digit = [&](size_t k) {
    return k < int_part.size() ? int_part[k] : frac_part[k - int_part.size()];
  };
  size_t first = 0;
  while (first < len && digit(first) == '0') ++first;
  if (first == len) {  // zero, whatever its sign or exponent
    out->push_back('0');
    return;
  }
  size_t last = len - 1;
  while (digit(last) == '0') --last;
  const size_t n = last - first + 1;  // significant digits
  auto append_digits = [&](size_t from, size_t to) {
    for (size_t p = from; p < to; ++p) out->push_back(digit(first + p));
  };
  auto append_mantissa = [&] {
    append_digits(0, 1);
    if (n > 1) {
      out->push_back('.');
      append_digits(1, n);
    }
    out->push_back('e');
  };
  if (negative) out->push_back('-');
  // S, the exponent of the first significant digit, is X + k.
  const int64_t k =
      static_cast<int64_t>(int_part.size()) - 1 - static_cast<int64_t>(first);
  while (!exp_digits.empty() && exp_digits.front() == '0')
    exp_digits.remove_prefix(1);
  if (exp_digits.size() <= 18) {
    int64_t x = 0;
    for (char c : exp_digits) x = x * 10 + (c - '0');
    const int64_t e = (exp_negative ? -x : x) + k;
    const int64_t digits = static_cast<int64_t>(n);
    if (e > -7 && e < 21) {
      if (e >= digits - 1) {
        append_digits(0, n);
        out->append(static_cast<size_t>(e - (digits - 1)), '0');
      } else if (e >= 0) {
        append_digits(0, static_cast<size_t>(e + 1));
        out->push_back('.');
        append_digits(static_cast<size_t>(e + 1), n);
      } else {
        out->append("0.");
        out->append(static_cast<size_t>(-e - 1), '0');
        append_digits(0, n);
      }
      return;
    }
    append_mantissa();
    out->append(std::to_string(e));
    return;
  }
  // |X| >= 10^18 > |k|, so S has X's sign and |S| = |X| +- |k|.
  append_mantissa();
  if (exp_negative) out->push_back('-');
  const uint64_t magnitude =
      k >= 0 ? static_cast<uint64_t>(k) : static_cast<uint64_t>(-k);
  const bool same_sign = (k >= 0) != exp_negative;
  out->append(same_sign ? AddSmall(exp_digits, magnitude)
                        : SubtractSmall(exp_digits, magnitude));
}

}  // namespace rwd

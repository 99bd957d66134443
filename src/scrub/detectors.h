// Detectors of personal data and secrets in text: what `record --scrub`
// replaces before anything is written, `rewind scan` reports and `rewind
// scrub` takes out of an existing recording.
//
// Built-in kinds, each a hand-written scanner (linear, no backtracking, no
// recursion, no allocation but the matches):
//   email  local@domain.tld (local part of letters, digits and ._%+-; a
//          domain with at least one dot and a top-level label of letters,
//          or an xn-- one)
//   phone  international form: '+' and 8 to 15 digits, in groups separated
//          by one space, '-', '.' or parentheses ("+1 415 555 0132",
//          "+44 (0)20 7946 0958", "+33612345678"); North-American form
//          3-3-4 with one kind of separator ("(415) 555-0132",
//          "415-555-0132", "415.555.0132", "415 555 0132"). A bare run of
//          digits is never a phone (ids, timestamps, counts look the same).
//   card   13 to 19 digits, in one run or in groups separated by one space
//          or '-', starting with 2-6 (the card industries' identifiers),
//          passing the Luhn check
//   ipv4   four dotted decimal octets, 0-255, no leading zeros
//   ipv6   what inet_pton(AF_INET6) accepts, with at least two colons
//   iban   country code, check digits and the country's length (compact or
//          in groups of four), passing the ISO 13616 mod-97 check
//   token  API keys and bearer tokens by shape: sk-..., sk_live_/rk_live_,
//          ghp_/gho_/ghu_/ghs_/ghr_/github_pat_, xox?-, AKIA/ASIA, AIza,
//          hf_, glpat-, JWTs (eyJ...eyJ...), and what follows "Bearer "
// Kinds given on the command line: each of the above, "ip" for ipv4 and
// ipv6, "all" for every built-in.
//
// User patterns, "NAME=REGEX", are RE2 expressions (linear time whatever the
// input: a pattern cannot make rewind backtrack for ever on a request). The
// whole match is replaced, or the first capturing group when the pattern has
// one ("id=(\d+)" replaces the digits only).
//
// A placeholder written by a scrubber, "<NAME:hhhhhhhh>" (NAME a detector of
// this set, 8 lowercase hex digits), is itself recognised: it is never
// scrubbed again, a scan does not report it, and keying reads it as its type.
//
// Thread-safety: a Detectors is immutable after Make() and safe for
// concurrent use.
#ifndef REWIND_SCRUB_DETECTORS_H_
#define REWIND_SCRUB_DETECTORS_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rewind/status.h"

namespace re2 {
class RE2;
}

namespace rwd::scrub {

// The built-in kinds, in the order they are listed and stored.
const std::vector<std::string>& BuiltinKinds();

// "email,phone" -> {"email","phone"}; "ip" and "all" expanded; sorted in
// BuiltinKinds() order, duplicates dropped. An unknown kind is an error
// naming the known ones.
Result<std::vector<std::string>> ParseKinds(std::string_view list);

// One match in a text: [begin, end) and which detector found it.
// detector < 0 marks a placeholder already in the text, of detector
// -1 - detector.
struct Match {
  size_t begin = 0;
  size_t end = 0;
  int detector = 0;
};

class Detectors {
 public:
  // kinds: built-in kind names (already parsed); patterns: "NAME=REGEX".
  // A NAME is [a-z][a-z0-9_-]*, at most 32 characters, and neither a
  // built-in kind nor repeated; a REGEX must compile and must not match the
  // empty string.
  static Result<std::shared_ptr<const Detectors>> Make(
      const std::vector<std::string>& kinds,
      const std::vector<std::string>& patterns);
  ~Detectors();
  // The same names, recognising placeholders only: what keys a request
  // these detectors have already scrubbed, without scanning it again.
  std::shared_ptr<const Detectors> PlaceholdersOnly() const;

  bool empty() const { return names_.empty(); }
  size_t size() const { return names_.size(); }
  // The detector's name, as placeholders carry it ("email", "customer").
  const std::string& name(int detector) const {
    return names_[static_cast<size_t>(detector)];
  }
  const std::vector<std::string>& names() const { return names_; }

  // Appends to *out the non-overlapping matches in text, in order: where
  // two overlap, the one that starts first wins, then the longer, then the
  // detector listed first. Placeholders already present are reported with
  // a negative detector (see Match).
  void Find(std::string_view text, std::vector<Match>* out) const;

  // True when some detector (not a placeholder) matches in text.
  bool Any(std::string_view text) const;

 private:
  Detectors() = default;
  enum class Builtin { kEmail, kPhone, kCard, kIpv4, kIpv6, kIban, kToken };
  struct Entry {
    bool builtin = true;
    Builtin kind = Builtin::kEmail;
    std::unique_ptr<re2::RE2> regex;  // user patterns
  };
  void FindBuiltin(Builtin kind, int detector, std::string_view text,
                   std::vector<Match>* out) const;
  void FindPattern(const re2::RE2& regex, int detector, std::string_view text,
                   std::vector<Match>* out) const;
  void FindPlaceholders(std::string_view text, std::vector<Match>* out) const;
  // False when the text (counted in *census) cannot hold this kind.
  bool MayMatch(Builtin kind, const void* census) const;

  std::vector<std::string> names_;
  std::vector<Entry> entries_;  // empty when placeholders only
};

// The scanners themselves, exposed for tests: each appends the matches it
// finds in text with the given detector number.
void FindEmails(std::string_view text, int detector, std::vector<Match>* out);
void FindPhones(std::string_view text, int detector, std::vector<Match>* out);
void FindCards(std::string_view text, int detector, std::vector<Match>* out);
void FindIpv4(std::string_view text, int detector, std::vector<Match>* out);
void FindIpv6(std::string_view text, int detector, std::vector<Match>* out);
void FindIbans(std::string_view text, int detector, std::vector<Match>* out);
void FindTokens(std::string_view text, int detector, std::vector<Match>* out);

// The Luhn check over a string of digits.
bool LuhnValid(std::string_view digits);
// The ISO 13616 check over a compact IBAN (no spaces).
bool IbanValid(std::string_view compact);

}  // namespace rwd::scrub

#endif  // REWIND_SCRUB_DETECTORS_H_

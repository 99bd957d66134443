// The Scrubber: applies a set of Detectors to what rewind stores of a
// request and a response, replacing each value found with a placeholder.
//
// Where it looks:
//  - a JSON body (by Content-Type, or a body starting with '{' or '['):
//    every string literal, decoded (escapes, \uXXXX) before the detectors
//    run, so "b\u006fb@x.com" and an e-mail inside a string that is itself
//    escaped JSON ("{\"to\":\"bob@x.com\"}", four levels deep) are found; a
//    literal without escapes is edited in place, one with escapes is
//    re-encoded whole. Between literals (numbers; whatever a body that only
//    looks like JSON holds) the detectors run on the bytes, and a number
//    replaced becomes a string ("<card:...>"), so the JSON stays JSON.
//  - an SSE stream (text/event-stream) or NDJSON (application/x-ndjson,
//    jsonl): line by line, each event's JSON as above ("data: {...}"),
//    other lines as text. Then the text the stream carries one token per
//    event (scrub/stream_text.h names the fields) is joined, and a value
//    found only there, split across events, is replaced: its placeholder
//    in the event where it starts, the rest of it taken out of the events
//    after (which keep their place and timing, with less text).
//  - a form body (application/x-www-form-urlencoded), the query string and
//    each path segment: each value percent-decoded, scrubbed, and encoded
//    again when something was replaced.
//  - header values, except framing ones (Content-Type, Content-Length,
//    Content-Encoding, Transfer-Encoding) and "[REDACTED]".
//  - any other body as text; binary media (image/*, audio/*, video/*,
//    application/octet-stream, application/pdf, application/zip) not at
//    all. A body with a Content-Encoding (gzip, ...) cannot be read: the
//    Scrubber says so (kUnscrubbable) and the caller does not store it.
//
// Modes:
//  - kStore: a value becomes "<NAME:hhhhhhhh>", the first 8 hex digits of
//    HMAC-SHA256(secret, NAME NUL value): the same value always gets the
//    same placeholder under one secret, another secret gives another, and
//    without the secret a placeholder cannot be tied back to a value.
//    Placeholders already present are left alone. Scrubbing twice is not
//    always the same as once: a placeholder can complete a match beside it
//    ("+1 455 555 01 455 555 0132" gives "+1 455 555 01 <phone:...>", in
//    which a second pass finds "+1 455 555 01"), and in a body that only
//    looks like JSON a quoted placeholder moves later literals.
//  - kKey: a value, and a placeholder, become "<NAME>": what the request key
//    is computed over, so a live request carrying any value of a kind keys
//    like the stored one carrying its placeholder.
//
// Thread-safety: const methods only; safe for concurrent use.
#ifndef REWIND_SCRUB_SCRUBBER_H_
#define REWIND_SCRUB_SCRUBBER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rewind/exchange.h"
#include "rewind/status.h"
#include "scrub/detectors.h"

namespace rwd::scrub {

enum class Mode { kStore, kKey };

// One replacement in a text: [begin, end) becomes text.
struct Edit {
  size_t begin = 0;
  size_t end = 0;
  std::string text;
};

// Values found, per detector (indexed as Detectors::name()).
using Counts = std::vector<size_t>;

// 32 random bytes from the system's generator: a recording's secret when
// none is given. Never stored.
std::string NewSecret();

// "text" with the edits (sorted, non-overlapping) applied.
std::string ApplyEdits(std::string_view text, const std::vector<Edit>& edits);

// The chunks with the edits (offsets into their concatenation) applied: an
// edit lands whole in the chunk where it starts; offsets are kept.
void ApplyEditsToChunks(std::vector<Chunk>* chunks,
                        const std::vector<Edit>& edits);

// The message of a Status the Scrubber returns for a body it cannot read.
constexpr const char* kUnscrubbable = "unscrubbable";

class Scrubber {
 public:
  // secret: used in kStore mode only.
  Scrubber(std::shared_ptr<const Detectors> detectors, Mode mode,
           std::string secret = std::string());

  const Detectors& detectors() const { return *detectors_; }
  Mode mode() const { return mode_; }

  // Plain text.
  std::string Text(std::string_view text, Counts* counts = nullptr) const;
  // A query string or a form body: "a=1&email=bob%40x.com".
  std::string Query(std::string_view query, Counts* counts = nullptr) const;
  // A path: each segment.
  std::string Path(std::string_view path, Counts* counts = nullptr) const;
  // A header's value (framing headers and "[REDACTED]" come back as given).
  std::string HeaderValue(std::string_view name, std::string_view value,
                          Counts* counts = nullptr) const;

  // The edits for a body of this Content-Type and Content-Encoding, each
  // event of a stream alone (Body and ScrubResponse also find values split
  // across events). A Content-Encoding other than identity:
  // InvalidArgument(kUnscrubbable).
  Status BodyEdits(std::string_view body, std::string_view content_type,
                   std::string_view content_encoding, std::vector<Edit>* edits,
                   Counts* counts = nullptr) const;
  // The body scrubbed (returns an error as BodyEdits).
  Result<std::string> Body(std::string_view body, std::string_view content_type,
                           std::string_view content_encoding,
                           Counts* counts = nullptr) const;

  // Path, query, header values and body of a request, in place. On an
  // error (an encoded body) the request is left unchanged.
  Status ScrubRequest(Request* request, Counts* counts = nullptr) const;
  // Header values and body (its chunks, offsets kept) of a response.
  Status ScrubResponse(Response* response, Counts* counts = nullptr) const;

 private:
  // Appends the edits for plain text at offset base. quote_digits: a match
  // that is all digits is a JSON number and becomes a string.
  void TextEdits(std::string_view text, size_t base, bool quote_digits,
                 std::vector<Edit>* edits, Counts* counts) const;
  // The bytes between two JSON string literals.
  void RegionEdits(std::string_view region, size_t base,
                   std::vector<Edit>* edits, Counts* counts) const;
  void JsonEdits(std::string_view text, size_t base, int depth,
                 std::vector<Edit>* edits, Counts* counts) const;
  void LineEdits(std::string_view text, bool sse, std::vector<Edit>* edits,
                 Counts* counts) const;
  // The edits for values split across a stream's events, in a body whose
  // events have been scrubbed one by one already.
  void SplitValueEdits(std::string_view body, bool sse,
                       std::vector<Edit>* edits, Counts* counts) const;
  // The value scrubbed, or the value itself when nothing was found.
  std::string Decoded(std::string_view decoded, int depth,
                      Counts* counts) const;
  std::string Replacement(const Match& m, std::string_view value) const;
  std::string Percent(std::string_view component, Counts* counts) const;

  std::shared_ptr<const Detectors> detectors_;
  Mode mode_;
  // HMAC-SHA256 under the secret, its inner and outer hashes started once
  // (kStore mode); shared by copies.
  struct Mac;
  std::shared_ptr<const Mac> mac_;
};

}  // namespace rwd::scrub

#endif  // REWIND_SCRUB_SCRUBBER_H_

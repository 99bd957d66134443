#include "scrub/stream_text.h"

#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <array>
#include <map>

namespace rwd::scrub {
namespace {

// The token fields' paths; "#" is an array index.
constexpr std::array<std::string_view, 13> kFields = {
    "choices.#.delta.content",
    "choices.#.delta.reasoning_content",
    "choices.#.delta.reasoning",
    "choices.#.delta.tool_calls.#.function.arguments",
    "choices.#.text",
    "delta",
    "delta.text",
    "delta.partial_json",
    "delta.thinking",
    "message.content",
    "response",
    "token.text",
    "candidates.#.content.parts.#.text",
};

// Deeper than every path above: nothing there is a token field.
constexpr size_t kMaxDepth = 8;

// Numbers that tell which of several texts a piece belongs to: a choice's
// or a tool call's "index" in its array (OpenAI streams every choice at
// position 0 of "choices", its "index" saying which it is), and an event's
// own "index", "output_index" and "content_index" (Anthropic's content
// blocks, the Responses API's output items).
bool IsOrderKey(std::string_view key) {
  return key == "index" || key == "output_index" || key == "content_index";
}

// Walks one event, collecting strings at token fields; Finish() files them
// under their paths once the whole event (and every "index" in it, which
// may come after the text) has been read.
class FieldFinder
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, FieldFinder> {
 public:
  FieldFinder(std::string_view event, size_t base,
              const rapidjson::MemoryStream* in)
      : event_(event), base_(base), in_(in) {}

  bool Default() {
    Next();
    return true;
  }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    if (!stack_.empty() && !stack_.back().array &&
        IsOrderKey(stack_.back().key)) {
      orders_[stack_.back().id][stack_.back().key].assign(s, n);
    }
    Next();
    return true;
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (AtField()) pending_.push_back({stack_, Literal(), std::string(s, n)});
    Next();
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    stack_.back().key.assign(s, n);
    return true;
  }
  bool StartObject() { return Push(false); }
  bool EndObject(rapidjson::SizeType) { return Pop(); }
  bool StartArray() { return Push(true); }
  bool EndArray(rapidjson::SizeType) { return Pop(); }

  // Files the event's pieces into "texts" ("order": paths as first seen).
  void Finish(std::map<std::string, StreamText>* texts,
              std::vector<std::string>* order) {
    for (Pending& p : pending_) {
      std::string path;
      const auto top = orders_.find(p.frames.front().id);
      if (top != orders_.end()) {
        for (const auto& [key, value] : top->second) {
          path += key + "=" + value + " ";
        }
      }
      for (size_t i = 0; i < p.frames.size(); ++i) {
        const Frame& f = p.frames[i];
        if (i > 0) path.push_back('.');
        if (!f.array) {
          path += f.key;
          continue;
        }
        std::string index = std::to_string(f.index);
        if (i + 1 < p.frames.size()) {  // the element is an object
          const auto element = orders_.find(p.frames[i + 1].id);
          if (element != orders_.end()) {
            const auto it = element->second.find("index");
            if (it != element->second.end()) index = it->second;
          }
        }
        path += index;
      }
      auto [it, added] = texts->try_emplace(path);
      if (added) {
        it->second.path = path;
        order->push_back(path);
      }
      it->second.pieces.push_back({base_ + p.literal.first,
                                   base_ + p.literal.second,
                                   std::move(p.value)});
    }
  }

 private:
  struct Frame {
    bool array = false;
    size_t index = 0;  // an array's position
    std::string key;   // an object's current key
    int id = 0;        // an object's number in the event
  };
  struct Pending {
    std::vector<Frame> frames;
    std::pair<size_t, size_t> literal;
    std::string value;
  };

  bool Push(bool array) {
    if (stack_.size() >= kMaxDepth) return false;  // stops the parse
    stack_.push_back(Frame{array, 0, std::string(), array ? 0 : ++objects_});
    return true;
  }
  bool Pop() {
    stack_.pop_back();
    Next();
    return true;
  }
  void Next() {
    if (!stack_.empty() && stack_.back().array) ++stack_.back().index;
  }

  // Whether the value being read is at a token field.
  bool AtField() const {
    if (stack_.empty() || stack_.front().array) return false;
    for (const std::vector<std::string_view>& field : FieldParts()) {
      if (field.size() != stack_.size()) continue;
      bool match = true;
      for (size_t i = 0; match && i < field.size(); ++i) {
        match = field[i] == "#" ? stack_[i].array
                                : !stack_[i].array && stack_[i].key == field[i];
      }
      if (match) return true;
    }
    return false;
  }

  // kFields, each split at its dots once.
  static const std::vector<std::vector<std::string_view>>& FieldParts() {
    static const auto* parts = [] {
      auto* out = new std::vector<std::vector<std::string_view>>();
      for (std::string_view field : kFields) {
        std::vector<std::string_view>& p = out->emplace_back();
        size_t pos = 0;
        while (true) {
          const size_t dot = field.find('.', pos);
          p.push_back(field.substr(pos, dot == std::string_view::npos
                                            ? std::string_view::npos
                                            : dot - pos));
          if (dot == std::string_view::npos) break;
          pos = dot + 1;
        }
      }
      return out;
    }();
    return *parts;
  }

  // The literal just read, quotes included: it ends where the input is now
  // and starts at the last quote before that no backslash escapes (inside
  // a literal every quote is escaped).
  std::pair<size_t, size_t> Literal() const {
    const size_t end = in_->Tell();
    size_t q = end >= 2 ? end - 2 : 0;
    while (q > 0) {
      if (event_[q] == '"') {
        size_t slashes = 0;
        while (q > slashes && event_[q - 1 - slashes] == '\\') ++slashes;
        if (slashes % 2 == 0) break;
      }
      --q;
    }
    return {q, end};
  }

  std::string_view event_;
  size_t base_;
  const rapidjson::MemoryStream* in_;
  std::vector<Frame> stack_;
  int objects_ = 0;
  std::map<int, std::map<std::string, std::string>> orders_;  // by object
  std::vector<Pending> pending_;
};

bool StartsJsonObject(std::string_view s) {
  for (char c : s) {
    if (c == '{') return true;
    if (c != ' ' && c != '\t') return false;
  }
  return false;
}

}  // namespace

std::vector<StreamText> StreamTexts(std::string_view body, bool sse) {
  std::map<std::string, StreamText> texts;
  std::vector<std::string> order;  // paths as first seen
  ForEachLine(body, sse, [&](std::string_view event, size_t offset, bool data) {
    if (!data || !StartsJsonObject(event)) return;
    rapidjson::MemoryStream ms(event.data(), event.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream>
        is(ms);
    FieldFinder finder(event, offset, &ms);
    rapidjson::Reader reader;
    // Pieces read before an error stay: a line cut short still holds them.
    reader.Parse<rapidjson::kParseIterativeFlag |
                 rapidjson::kParseNumbersAsStringsFlag |
                 rapidjson::kParseStopWhenDoneFlag>(is, finder);
    finder.Finish(&texts, &order);
  });
  std::vector<StreamText> out;
  out.reserve(order.size());
  for (const std::string& path : order) out.push_back(std::move(texts[path]));
  return out;
}

}  // namespace rwd::scrub

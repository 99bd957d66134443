#include "key/json.h"

#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "key/json_tree.h"
#include "rewind/redact.h"

namespace rwd {
namespace {

// Iterative: nesting depth cannot overflow the stack. Numbers as their
// text: RapidJSON's double parsing is not exact (doubles one step apart can
// read alike, and 2^64 + 1 reads as 2^64), and its full-precision path calls
// __builtin_clzll(0) for numbers like "0e55" (found by fuzz_request_key).
constexpr unsigned kParseFlags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag;

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using json_tree::Kind;
using json_tree::Node;
using json_tree::Tree;

// Whether "body" starts like a JSON object or array: '{' or '[' after
// whitespace and an optional UTF-8 byte order mark.
bool LooksLikeJson(const std::string& body) {
  size_t i = body.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
  while (i < body.size() && (body[i] == ' ' || body[i] == '\t' ||
                             body[i] == '\r' || body[i] == '\n')) {
    ++i;
  }
  return i < body.size() && (body[i] == '{' || body[i] == '[');
}

// Parses "text" into "handler". True when it is one JSON document and
// nothing else: RapidJSON stops at a NUL byte as at the end of its input,
// so bytes after an embedded NUL must fail the parse, not be ignored.
template <typename Handler>
bool ParseAll(const std::string& text, Handler* handler,
              rapidjson::Reader* reader,
              rapidjson::ParseResult* error = nullptr) {
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(
      ms);
  rapidjson::ParseResult r = reader->Parse<kParseFlags>(is, *handler);
  if (r.IsError()) {
    if (error) *error = r;
    return false;
  }
  if (ms.Tell() != text.size()) {
    if (error)
      error->Set(rapidjson::kParseErrorDocumentRootNotSingular, ms.Tell());
    return false;
  }
  return true;
}

// ---- A document as a flat tree ---------------------------------------------

// Paths are matched while parsing: a member's path is the names of the
// objects that lead to it from the root object. A container reached through
// an array is on no path, nor is anything below it, so the containers on a
// path are always the outermost open ones (the "live" levels).

// SAX handler building a Tree, "ignore" paths left out. Stops (too_deep)
// when what is kept would nest deeper than kMaxJsonDepth.
class TreeBuilder
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TreeBuilder> {
 public:
  // "open" is scratch space, cleared here.
  TreeBuilder(const FieldPaths& ignore, Tree* tree, std::vector<size_t>* open)
      : ignore_(ignore), t_(tree), open_(*open) {
    open_.clear();
  }

  bool too_deep() const { return too_deep_; }

  bool Null() { return Scalar(Kind::kNull); }
  bool Bool(bool b) { return Scalar(b ? Kind::kTrue : Kind::kFalse); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    if (Skipped()) return true;
    const size_t at = t_->arena.size();
    AppendCanonicalNumber(std::string_view(s, n), &t_->arena);
    Add(Kind::kNumber, at, t_->arena.size() - at);
    return true;
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (Skipped()) return true;
    const size_t at = t_->arena.size();
    t_->arena.append(s, n);
    Add(Kind::kString, at, n);
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (skipping_ > 0) return true;
    if (Ignored(std::string_view(s, n))) {
      skip_next_ = true;
      return true;
    }
    name_ = t_->arena.size();
    name_len_ = n;
    t_->arena.append(s, n);
    return true;
  }
  bool StartObject() { return Start(Kind::kObject); }
  bool StartArray() { return Start(Kind::kArray); }
  bool EndObject(rapidjson::SizeType) { return End(); }
  bool EndArray(rapidjson::SizeType) { return End(); }

 private:
  // Whether the scalar just read is left out.
  bool Skipped() {
    if (skipping_ > 0) return true;
    if (skip_next_) {
      skip_next_ = false;
      return true;
    }
    return false;
  }
  bool Scalar(Kind kind) {
    if (!Skipped()) Add(kind, 0, 0);
    return true;
  }
  bool Start(Kind kind) {
    if (skipping_ > 0) {
      ++skipping_;
      return true;
    }
    if (skip_next_) {
      skip_next_ = false;
      skipping_ = 1;
      return true;
    }
    if (open_.size() >= static_cast<size_t>(kMaxJsonDepth)) {
      too_deep_ = true;
      return false;
    }
    if (kind == Kind::kObject && live_ == open_.size()) ++live_;
    open_.push_back(Add(kind, 0, 0));
    return true;
  }
  bool End() {
    if (skipping_ > 0) {
      --skipping_;
      return true;
    }
    t_->nodes[open_.back()].end = t_->nodes.size();
    if (live_ == open_.size()) --live_;
    open_.pop_back();
    return true;
  }
  size_t Add(Kind kind, size_t text, size_t len) {
    Node node;
    node.kind = kind;
    node.text = text;
    node.text_len = len;
    if (!open_.empty() && t_->nodes[open_.back()].kind == Kind::kObject) {
      node.name = name_;
      node.name_len = name_len_;
    }
    node.end = t_->nodes.size() + 1;
    t_->nodes.push_back(node);
    return t_->nodes.size() - 1;
  }
  bool Ignored(std::string_view key) const {
    const size_t level = open_.size();
    if (ignore_.empty() || live_ != level) return false;
    for (const auto& path : ignore_) {
      if (path.size() != level || path.back().size() != key.size() ||
          path.back() != key) {
        continue;
      }
      bool match = true;
      for (size_t j = 0; j + 1 < level && match; ++j) {
        match = t_->Name(open_[j + 1]) == path[j];
      }
      if (match) return true;
    }
    return false;
  }

  const FieldPaths& ignore_;
  Tree* t_;
  std::vector<size_t>& open_;  // the open containers, outermost first
  size_t live_ = 0;            // how many of them are on a path
  size_t name_ = 0, name_len_ = 0;
  bool skip_next_ = false;  // the next value is an ignored member's
  int64_t skipping_ = 0;    // nesting inside an ignored value
  bool too_deep_ = false;
};

struct Frame {
  size_t node, begin, pos, end;  // its values are order[begin, end)
};

// What one canonicalization needs besides its input. The key is computed
// for every request, and allocating these each time was a quarter of its
// cost, so each thread keeps one (given back after a large body).
struct Scratch {
  Tree tree;
  std::vector<size_t> open, order;
  std::vector<Frame> frames;
  rapidjson::Reader reader;
  rapidjson::StringBuffer buffer;
  Writer writer;

  Scratch() : writer(buffer) {}
  void Clear() {
    tree.nodes.clear();
    tree.arena.clear();
    order.clear();
    frames.clear();
    buffer.Clear();
    writer.Reset(buffer);
  }
};

// content_equivalence: each messages[i].content (the root an object) that
// is a list of one object whose members are exactly "type": "text" and
// "text": a string becomes that string. The node is made a string in place
// and keeps its "end", so walks skip what was its part.
void CollapseTextParts(Tree* t) {
  if (t->nodes.empty() || t->nodes[0].kind != Kind::kObject) return;
  std::vector<size_t> members, messages, fields, parts, part;
  t->Children(0, &members);
  for (size_t m : members) {
    if (t->nodes[m].kind != Kind::kArray || t->Name(m) != "messages") continue;
    messages.clear();
    t->Children(m, &messages);
    for (size_t msg : messages) {
      if (t->nodes[msg].kind != Kind::kObject) continue;
      fields.clear();
      t->Children(msg, &fields);
      for (size_t content : fields) {
        if (t->nodes[content].kind != Kind::kArray ||
            t->Name(content) != "content") {
          continue;
        }
        parts.clear();
        t->Children(content, &parts);
        if (parts.size() != 1 || t->nodes[parts[0]].kind != Kind::kObject)
          continue;
        part.clear();
        t->Children(parts[0], &part);
        if (part.size() != 2) continue;
        size_t type = SIZE_MAX, text = SIZE_MAX;
        for (size_t f : part) {
          if (t->Name(f) == "type") type = f;
          if (t->Name(f) == "text") text = f;
        }
        if (type == SIZE_MAX || text == SIZE_MAX ||
            t->nodes[type].kind != Kind::kString || t->Text(type) != "text" ||
            t->nodes[text].kind != Kind::kString) {
          continue;
        }
        Node& n = t->nodes[content];
        n.kind = Kind::kString;
        n.text = t->nodes[text].text;
        n.text_len = t->nodes[text].text_len;
      }
    }
  }
}

// Rewrites every string value with the normalizers whose path leads to it
// (a prefix of its path), in their order. Iterative.
void Normalize(const BodyRules& rules, Tree* t, std::string* scratch) {
  struct Level {
    size_t node, end, index;  // index: the next child's, in an array
  };
  struct Segment {
    size_t node;  // whose name it is, in an object (the arena may move)
    bool is_index;
    size_t index;
  };
  std::vector<Level> open;
  std::vector<Segment> path;  // path[d]: the segment at depth d + 1
  std::string current;
  size_t i = 0;
  while (i < t->nodes.size()) {
    while (!open.empty() && i >= open.back().end) open.pop_back();
    if (!open.empty()) {
      Level& parent = open.back();
      const size_t depth = open.size();
      path.resize(depth);
      if (t->nodes[parent.node].kind == Kind::kObject) {
        path[depth - 1] = Segment{i, false, 0};
      } else {
        path[depth - 1] = Segment{i, true, parent.index++};
      }
    }
    const Node& node = t->nodes[i];
    if (node.kind == Kind::kObject || node.kind == Kind::kArray) {
      open.push_back(Level{i, node.end, 0});
      ++i;
      continue;
    }
    if (node.kind == Kind::kString) {
      const size_t depth = open.size();
      bool changed = false;
      for (const auto& n : rules.normalizers) {
        const size_t len = n->path().size();
        if (len > depth) continue;
        bool match = true;
        for (size_t j = 0; j < len && match; ++j) {
          match = n->SegmentMatches(j, t->Name(path[j].node), path[j].is_index,
                                    path[j].index);
        }
        if (!match) continue;
        const std::string_view text =
            changed ? std::string_view(current) : t->Text(i);
        if (n->Apply(text, scratch)) {
          current.swap(*scratch);
          changed = true;
        }
      }
      if (changed) {
        Node& n = t->nodes[i];
        n.text = t->arena.size();
        n.text_len = current.size();
        t->arena.append(current);
      }
    }
    i = node.end > i ? node.end : i + 1;
  }
}

bool BuildTree(const std::string& text, const BodyRules& rules, Tree* tree,
               std::vector<size_t>* open, rapidjson::Reader* reader) {
  if (text.empty()) return false;
  tree->nodes.reserve(16);
  tree->arena.reserve(text.size());
  TreeBuilder builder(rules.ignore, tree, open);
  if (!ParseAll(text, &builder, reader)) return false;
  if (rules.content_equivalence) CollapseTextParts(tree);
  if (!rules.normalizers.empty()) {
    std::string scratch;
    Normalize(rules, tree, &scratch);
  }
  return true;
}

void WriteScalar(const Tree& t, size_t i, Writer* w) {
  const std::string_view text = t.Text(i);
  const auto size = static_cast<rapidjson::SizeType>(text.size());
  switch (t.nodes[i].kind) {
    case Kind::kNull:
      w->Null();
      break;
    case Kind::kFalse:
      w->Bool(false);
      break;
    case Kind::kTrue:
      w->Bool(true);
      break;
    case Kind::kNumber:
      w->RawValue(text.data(), text.size(), rapidjson::kNumberType);
      break;
    case Kind::kString:
      w->String(text.data(), size);
      break;
    default:
      break;
  }
}

// The canonical text of scratch->tree, without recursion; "tool_sets":
// BodyRules::tool_sets.
void WriteCanonical(Scratch* scratch, bool tool_sets, std::string* out) {
  const Tree& t = scratch->tree;
  Writer& w = scratch->writer;
  std::vector<size_t>& order = scratch->order;
  std::vector<Frame>& frames = scratch->frames;
  auto open = [&](size_t i) {
    const size_t begin = order.size();
    t.Children(i, &order);
    if (t.nodes[i].kind == Kind::kObject) {
      t.SortByName(order.begin() + static_cast<ptrdiff_t>(begin), order.end());
      w.StartObject();
    } else {
      // A member of the root object: the only frame open is the root's.
      if (tool_sets && frames.size() == 1 && frames.back().node == 0 &&
          t.nodes[0].kind == Kind::kObject && json_tree::IsToolSet(t, i)) {
        json_tree::SortTools(t, order.begin() + static_cast<ptrdiff_t>(begin),
                             order.end());
      }
      w.StartArray();
    }
    frames.push_back(Frame{i, begin, begin, order.size()});
  };
  if (t.IsContainer(0)) {
    open(0);
  } else {
    WriteScalar(t, 0, &w);
  }
  while (!frames.empty()) {
    Frame& f = frames.back();
    if (f.pos == f.end) {
      if (t.nodes[f.node].kind == Kind::kObject) {
        w.EndObject();
      } else {
        w.EndArray();
      }
      order.resize(f.begin);
      frames.pop_back();
      continue;
    }
    const size_t c = order[f.pos++];
    if (t.nodes[f.node].kind == Kind::kObject) {
      const std::string_view name = t.Name(c);
      w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    }
    if (t.IsContainer(c)) {
      open(c);  // invalidates f
    } else {
      WriteScalar(t, c, &w);
    }
  }
  out->assign(scratch->buffer.GetString(), scratch->buffer.GetSize());
}

// SAX handler copying a document to a Writer, the values of "paths"
// replaced with "[REDACTED]".
class Redactor
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Redactor> {
 public:
  Redactor(const FieldPaths& paths, Writer* w) : paths_(paths), w_(w) {}

  int64_t redacted() const { return redacted_; }
  // Deepest nesting met, the redacted values left out.
  size_t max_depth() const { return max_depth_; }

  bool Null() { return Skipped() || w_->Null(); }
  bool Bool(bool b) { return Skipped() || w_->Bool(b); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return Skipped() || w_->RawValue(s, n, rapidjson::kNumberType);
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return Skipped() || w_->String(s, n);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (skipping_ > 0) return true;
    w_->Key(s, n);
    const std::string_view key(s, n);
    if (live_ == depth_) {
      for (const auto& path : paths_) {
        if (path.size() != depth_ || path.back() != key) continue;
        bool match = true;
        for (size_t j = 0; j + 1 < depth_ && match; ++j)
          match = names_[j + 1] == path[j];
        if (!match) continue;
        w_->String(kRedacted);
        ++redacted_;
        skip_next_ = true;
        return true;
      }
    }
    pending_.assign(s, n);
    return true;
  }
  bool StartObject() { return Start(true); }
  bool StartArray() { return Start(false); }
  bool EndObject(rapidjson::SizeType) { return End(true); }
  bool EndArray(rapidjson::SizeType) { return End(false); }

 private:
  bool Skipped() {
    if (skipping_ > 0) return true;
    if (skip_next_) {
      skip_next_ = false;
      return true;
    }
    return false;
  }
  bool Start(bool object) {
    if (skipping_ > 0) {
      ++skipping_;
      return true;
    }
    if (skip_next_) {
      skip_next_ = false;
      skipping_ = 1;
      return true;
    }
    if (object && live_ == depth_) {
      ++live_;
      names_.push_back(depth_ == 0 ? std::string() : pending_);
    }
    ++depth_;
    max_depth_ = std::max(max_depth_, depth_);
    return object ? w_->StartObject() : w_->StartArray();
  }
  bool End(bool object) {
    if (skipping_ > 0) {
      --skipping_;
      return true;
    }
    if (live_ == depth_) {
      --live_;
      names_.pop_back();
    }
    --depth_;
    return object ? w_->EndObject() : w_->EndArray();
  }

  const FieldPaths& paths_;
  Writer* w_;
  std::vector<std::string> names_;  // names leading to the live levels
  std::string pending_;             // the last member name read
  size_t depth_ = 0, live_ = 0, max_depth_ = 0;
  bool skip_next_ = false;
  int64_t skipping_ = 0;
  int64_t redacted_ = 0;
};

FieldPaths SplitPaths(const std::vector<std::string>& dotted) {
  FieldPaths out;
  for (const std::string& d : dotted) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
      const size_t dot = d.find('.', start);
      parts.push_back(d.substr(start, dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    out.push_back(std::move(parts));
  }
  return out;
}

}  // namespace

namespace json_tree {

bool Build(const std::string& text, const BodyRules& rules, Tree* tree) {
  tree->nodes.clear();
  tree->arena.clear();
  std::vector<size_t> open;
  rapidjson::Reader reader;
  return BuildTree(text, rules, tree, &open, &reader);
}

}  // namespace json_tree

Result<bool> RedactJsonFields(std::string* body,
                              const std::vector<std::string>& paths) {
  if (paths.empty() || body->empty()) return false;
  const FieldPaths split = SplitPaths(paths);
  rapidjson::StringBuffer buffer(nullptr, body->size() + 16);
  Writer writer(buffer);
  Redactor redactor(split, &writer);
  rapidjson::ParseResult error;
  rapidjson::Reader reader;
  if (!ParseAll(*body, &redactor, &reader, &error)) {
    if (!LooksLikeJson(*body)) return false;
    return Status::InvalidArgument(
        std::string("the body looks like JSON but does not parse (") +
        rapidjson::GetParseError_En(error.Code()) + " at byte " +
        std::to_string(error.Offset()) +
        "), so --redact-field cannot take secrets out of it");
  }
  if (redactor.redacted() == 0) return false;
  if (redactor.max_depth() > static_cast<size_t>(kMaxJsonDepth)) {
    return Status::InvalidArgument(
        "the JSON body nests deeper than " + std::to_string(kMaxJsonDepth) +
        " levels, so it is keyed as bytes, and holds a --redact-field: "
        "redacting it would change its key");
  }
  body->assign(buffer.GetString(), buffer.GetSize());
  return true;
}

bool CanonicalJson(const std::string& text, const BodyRules& rules,
                   std::string* out) {
  thread_local std::unique_ptr<Scratch> scratch;
  if (!scratch) scratch = std::make_unique<Scratch>();
  scratch->Clear();
  const bool json =
      BuildTree(text, rules, &scratch->tree, &scratch->open, &scratch->reader);
  if (json) WriteCanonical(scratch.get(), rules.tool_sets, out);
  if (text.size() > (64 << 10)) scratch.reset();  // keep no large buffers
  return json;
}

}  // namespace rwd

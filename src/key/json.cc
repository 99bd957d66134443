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

enum class Kind : uint8_t {
  kNull,
  kFalse,
  kTrue,
  kNumber,
  kString,
  kObject,
  kArray
};

// One value, in document order; a container's values follow it, up to
// "end". Texts (member names, strings, canonical numbers) live in the
// tree's arena.
struct Node {
  Kind kind;
  size_t name = 0, name_len = 0;  // member name, in an object
  size_t text = 0, text_len = 0;  // string or canonical number
  size_t end = 0;                 // one past this value's last node
};

struct Tree {
  std::vector<Node> nodes;
  std::string arena;

  std::string_view Name(size_t i) const {
    return {arena.data() + nodes[i].name, nodes[i].name_len};
  }
  std::string_view Text(size_t i) const {
    return {arena.data() + nodes[i].text, nodes[i].text_len};
  }
  bool IsContainer(size_t i) const {
    return nodes[i].kind == Kind::kObject || nodes[i].kind == Kind::kArray;
  }
  // The values of container "i", in document order.
  void Children(size_t i, std::vector<size_t>* out) const {
    for (size_t c = i + 1; c < nodes[i].end; c = nodes[c].end)
      out->push_back(c);
  }
  // Object members by name, bytewise; members of one name keep their order.
  void SortByName(std::vector<size_t>::iterator begin,
                  std::vector<size_t>::iterator end) const {
    if (end - begin < 2) return;  // (an empty vector's begin() + 1 is UB)
    auto less = [this](size_t a, size_t b) { return Name(a) < Name(b); };
    if (end - begin <= 32) {  // insertion sort: stable, no allocation
      for (auto it = begin + 1; it < end; ++it) {
        const size_t v = *it;
        auto hole = it;
        while (hole > begin && less(v, *(hole - 1))) {
          *hole = *(hole - 1);
          --hole;
        }
        *hole = v;
      }
    } else {
      std::stable_sort(begin, end, less);
    }
  }
};

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

// The canonical text of scratch->tree, without recursion.
void WriteCanonical(Scratch* scratch, std::string* out) {
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

std::string Join(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

// Recursion is bounded: a tree nests at most kMaxJsonDepth levels.
void DiffNodes(const Tree& a, size_t ia, const Tree& b, size_t ib,
               const std::string& path, size_t limit,
               std::vector<std::string>* out) {
  if (out->size() >= limit) return;
  const Kind kind = a.nodes[ia].kind;
  if (kind != b.nodes[ib].kind) {
    out->push_back(path.empty() ? "(body)" : path);
    return;
  }
  if (kind == Kind::kObject) {
    std::vector<size_t> ma, mb;
    a.Children(ia, &ma);
    b.Children(ib, &mb);
    a.SortByName(ma.begin(), ma.end());
    b.SortByName(mb.begin(), mb.end());
    size_t i = 0, j = 0;
    while ((i < ma.size() || j < mb.size()) && out->size() < limit) {
      std::string_view name;
      if (j == mb.size() || (i < ma.size() && a.Name(ma[i]) < b.Name(mb[j]))) {
        name = a.Name(ma[i]);
      } else {
        name = b.Name(mb[j]);
      }
      size_t i2 = i, j2 = j;
      while (i2 < ma.size() && a.Name(ma[i2]) == name) ++i2;
      while (j2 < mb.size() && b.Name(mb[j2]) == name) ++j2;
      const std::string member = Join(path, name);
      // Members of one name are compared in their order.
      for (size_t k = 0; i + k < i2 && j + k < j2; ++k) {
        DiffNodes(a, ma[i + k], b, mb[j + k], member, limit, out);
      }
      if (i2 - i != j2 - j && out->size() < limit) out->push_back(member);
      i = i2;
      j = j2;
    }
    return;
  }
  if (kind == Kind::kArray) {
    std::vector<size_t> ea, eb;
    a.Children(ia, &ea);
    b.Children(ib, &eb);
    const size_t n = std::max(ea.size(), eb.size());
    for (size_t k = 0; k < n && out->size() < limit; ++k) {
      std::string item = path + "[" + std::to_string(k) + "]";
      if (k >= ea.size() || k >= eb.size()) {
        out->push_back(std::move(item));
      } else {
        DiffNodes(a, ea[k], b, eb[k], item, limit, out);
      }
    }
    return;
  }
  if (a.Text(ia) != b.Text(ib)) out->push_back(path.empty() ? "(body)" : path);
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
  if (json) WriteCanonical(scratch.get(), out);
  if (text.size() > (64 << 10)) scratch.reset();  // keep no large buffers
  return json;
}

bool DiffJson(const std::string& a, const std::string& b,
              const BodyRules& rules, size_t limit,
              std::vector<std::string>* out) {
  Tree ta, tb;
  std::vector<size_t> open;
  rapidjson::Reader reader;
  if (!BuildTree(a, rules, &ta, &open, &reader) ||
      !BuildTree(b, rules, &tb, &open, &reader)) {
    return false;
  }
  DiffNodes(ta, 0, tb, 0, "", limit, out);
  return true;
}

}  // namespace rwd

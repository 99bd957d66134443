// DiffJson (key/json.h): where two JSON documents differ, field by field,
// with excerpts of the differing values.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "key/json.h"
#include "key/json_tree.h"

namespace rwd {
namespace {

using json_tree::Kind;
using json_tree::Tree;

constexpr size_t kAbsent = static_cast<size_t>(-1);
// A container's text is rendered up to this many bytes before an excerpt
// is cut from it: enough to bring a difference near its start into view.
constexpr size_t kMaxRendered = 16 << 10;
// How much of a value an excerpt shows, and how much of it comes before
// the first differing byte.
constexpr size_t kExcerptBytes = 80;
constexpr size_t kLeadBytes = 24;

// One difference: its path and the two values (node indices, kAbsent
// where the field is missing).
struct Found {
  std::string path;
  size_t a, b;
};

std::string Join(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

// Whether members "ia" and "ib" of the roots are tool sets to compare by
// name: only when both are (then their canonical forms are both sorted).
bool BothToolSets(const Tree& a, size_t ia, const Tree& b, size_t ib) {
  return json_tree::IsToolSet(a, ia) && json_tree::IsToolSet(b, ib);
}

// The longest common prefix of "paths" that ends where a path segment
// does, and at least "floor" long (every path starts with it).
std::string CommonPath(const std::vector<Found>& found, size_t floor) {
  std::string prefix = found.front().path;
  for (const Found& f : found) {
    size_t n = 0;
    while (n < prefix.size() && n < f.path.size() && prefix[n] == f.path[n])
      ++n;
    prefix.resize(n);
  }
  auto ends_segment = [&](size_t n) {
    for (const Found& f : found) {
      if (n < f.path.size() && f.path[n] != '.' && f.path[n] != '[')
        return false;
    }
    return true;
  };
  size_t n = prefix.size();
  while (n > floor && !ends_segment(n)) --n;
  prefix.resize(std::max(n, floor));
  return prefix;
}

// Recursion is bounded: a tree nests at most kMaxJsonDepth levels.
// "tool_sets": whether the values compared may be tool sets, which holds
// for the roots and their members when BodyRules::tool_sets is on.
void DiffNodes(const Tree& a, size_t ia, const Tree& b, size_t ib,
               const std::string& path, size_t limit, bool tool_sets,
               std::vector<Found>* out) {
  if (out->size() >= limit) return;
  const Kind kind = a.nodes[ia].kind;
  if (kind != b.nodes[ib].kind) {
    out->push_back({path.empty() ? "(body)" : path, ia, ib});
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
      // Tool sets are members of the root.
      const bool sets = tool_sets && path.empty() && ia == 0 && ib == 0;
      size_t k = 0;
      for (; i + k < i2 && j + k < j2; ++k) {
        DiffNodes(a, ma[i + k], b, mb[j + k], member, limit, sets, out);
      }
      if (i2 - i != j2 - j && out->size() < limit) {
        out->push_back({member, i + k < i2 ? ma[i + k] : kAbsent,
                        j + k < j2 ? mb[j + k] : kAbsent});
      }
      i = i2;
      j = j2;
    }
    return;
  }
  if (kind == Kind::kArray) {
    std::vector<size_t> ea, eb;
    a.Children(ia, &ea);
    b.Children(ib, &eb);
    if (tool_sets && BothToolSets(a, ia, b, ib)) {
      // Items paired by name, in order among one name; each item that
      // differs is one difference, named by its tool and the longest path
      // its differences share: tools[get_weather].parameters.
      json_tree::SortTools(a, ea.begin(), ea.end());
      json_tree::SortTools(b, eb.begin(), eb.end());
      size_t i = 0, j = 0;
      while ((i < ea.size() || j < eb.size()) && out->size() < limit) {
        std::string_view name;
        if (j == eb.size() ||
            (i < ea.size() &&
             json_tree::ToolName(a, ea[i]) < json_tree::ToolName(b, eb[j]))) {
          name = json_tree::ToolName(a, ea[i]);
        } else {
          name = json_tree::ToolName(b, eb[j]);
        }
        const std::string item = path + "[" + std::string(name) + "]";
        size_t i2 = i, j2 = j;
        while (i2 < ea.size() && json_tree::ToolName(a, ea[i2]) == name) ++i2;
        while (j2 < eb.size() && json_tree::ToolName(b, eb[j2]) == name) ++j2;
        size_t k = 0;
        for (; i + k < i2 && j + k < j2 && out->size() < limit; ++k) {
          std::vector<Found> inner;
          DiffNodes(a, ea[i + k], b, eb[j + k], item, 8, false, &inner);
          if (inner.empty()) continue;
          Found one{CommonPath(inner, item.size()), ea[i + k], eb[j + k]};
          if (inner.size() == 1) one = std::move(inner.front());
          out->push_back(std::move(one));
        }
        for (; (i + k < i2 || j + k < j2) && out->size() < limit; ++k) {
          out->push_back({item, i + k < i2 ? ea[i + k] : kAbsent,
                          j + k < j2 ? eb[j + k] : kAbsent});
        }
        i = i2;
        j = j2;
      }
      return;
    }
    const size_t n = std::max(ea.size(), eb.size());
    for (size_t k = 0; k < n && out->size() < limit; ++k) {
      std::string item = path + "[" + std::to_string(k) + "]";
      if (k >= ea.size() || k >= eb.size()) {
        out->push_back({std::move(item), k < ea.size() ? ea[k] : kAbsent,
                        k < eb.size() ? eb[k] : kAbsent});
      } else {
        DiffNodes(a, ea[k], b, eb[k], item, limit, false, out);
      }
    }
    return;
  }
  if (a.Text(ia) != b.Text(ib)) {
    out->push_back({path.empty() ? "(body)" : path, ia, ib});
  }
}

// Appends "s" as the inside of a JSON string: quotes, backslashes and
// control characters escaped, so an excerpt is always one line.
void AppendEscaped(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c == '\t') {
      out->append("\\t");
    } else if (u < 0x20 || u == 0x7f) {
      out->append("\\u00");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 0xF]);
    } else {
      out->push_back(c);
    }
  }
}

// The text of value "n" (a string's without its quotes), in document
// order, without recursion, up to about kMaxRendered bytes.
std::string Render(const Tree& t, size_t n) {
  std::string out;
  if (t.nodes[n].kind == Kind::kString) {
    AppendEscaped(t.Text(n), &out);
    return out;
  }
  struct Open {
    size_t end;
    bool object, first;
  };
  std::vector<Open> open;
  const size_t last = t.nodes[n].end;
  size_t i = n;
  while (i < last && out.size() < kMaxRendered) {
    while (!open.empty() && i >= open.back().end) {
      out.push_back(open.back().object ? '}' : ']');
      open.pop_back();
    }
    if (!open.empty()) {
      if (!open.back().first) out.push_back(',');
      open.back().first = false;
      if (open.back().object) {
        out.push_back('"');
        AppendEscaped(t.Name(i), &out);
        out.append("\":");
      }
    }
    const Kind kind = t.nodes[i].kind;
    if (kind == Kind::kObject || kind == Kind::kArray) {
      out.push_back(kind == Kind::kObject ? '{' : '[');
      open.push_back({t.nodes[i].end, kind == Kind::kObject, true});
      ++i;
      continue;
    }
    switch (kind) {
      case Kind::kNull:
        out.append("null");
        break;
      case Kind::kFalse:
        out.append("false");
        break;
      case Kind::kTrue:
        out.append("true");
        break;
      case Kind::kString:
        out.push_back('"');
        AppendEscaped(t.Text(i), &out);
        out.push_back('"');
        break;
      default:
        out.append(t.Text(i));
        break;
    }
    i = t.nodes[i].end > i ? t.nodes[i].end : i + 1;
  }
  while (!open.empty() && out.size() < kMaxRendered) {
    out.push_back(open.back().object ? '}' : ']');
    open.pop_back();
  }
  return out;
}

bool Continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// About kExcerptBytes of "text" from near byte "at" (where it starts to
// differ from the other value), marked with "…" where cut, in quotes for a
// string.
std::string Excerpt(const std::string& text, size_t at, bool string) {
  size_t begin = 0, end = text.size();
  if (text.size() > kExcerptBytes) {
    begin = at > kLeadBytes ? at - kLeadBytes : 0;
    begin = std::min(begin, text.size() - kExcerptBytes);
    end = begin + kExcerptBytes;
    while (begin > 0 && Continuation(text[begin])) --begin;
    while (end < text.size() && Continuation(text[end])) ++end;
    // Not after half of an escape ("\" then the cut).
    size_t slashes = 0;
    while (end - slashes > begin && text[end - slashes - 1] == '\\') ++slashes;
    if (slashes % 2 == 1) --end;
  }
  std::string out = string ? "\"" : "";
  if (begin > 0) out += "\xE2\x80\xA6";  // …
  out.append(text, begin, end - begin);
  if (end < text.size()) out += "\xE2\x80\xA6";
  if (string) out += "\"";
  return out;
}

void Show(const Tree& a, const Tree& b, const Found& f, FieldDifference* d) {
  d->shown = true;
  const bool sa = f.a != kAbsent && a.nodes[f.a].kind == Kind::kString;
  const bool sb = f.b != kAbsent && b.nodes[f.b].kind == Kind::kString;
  const std::string ta = f.a == kAbsent ? std::string() : Render(a, f.a);
  const std::string tb = f.b == kAbsent ? std::string() : Render(b, f.b);
  size_t at = 0;
  while (at < ta.size() && at < tb.size() && ta[at] == tb[at]) ++at;
  if (f.a != kAbsent) d->a = Excerpt(ta, at, sa);
  if (f.b != kAbsent) d->b = Excerpt(tb, at, sb);
}

}  // namespace

bool DiffJson(const std::string& a, const std::string& b,
              const BodyRules& rules, size_t limit, size_t shown,
              std::vector<FieldDifference>* out) {
  Tree ta, tb;
  if (!json_tree::Build(a, rules, &ta) || !json_tree::Build(b, rules, &tb)) {
    return false;
  }
  std::vector<Found> found;
  DiffNodes(ta, 0, tb, 0, "", limit, rules.tool_sets, &found);
  for (size_t i = 0; i < found.size(); ++i) {
    FieldDifference d;
    d.path = std::move(found[i].path);
    if (i < shown) Show(ta, tb, found[i], &d);
    out->push_back(std::move(d));
  }
  return true;
}

}  // namespace rwd

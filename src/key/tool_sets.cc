// Tool sets (src/key/json_tree.h): the tools a request offers, keyed as a
// set by their names.
#include <algorithm>
#include <string_view>
#include <vector>

#include "key/json_tree.h"

namespace rwd {
namespace json_tree {

std::string_view ToolName(const Tree& t, size_t i) {
  if (t.nodes[i].kind != Kind::kObject) return {};
  std::string_view name, function_name, type;
  for (size_t c = i + 1; c < t.nodes[i].end; c = t.nodes[c].end) {
    const std::string_view member = t.Name(c);
    const Kind kind = t.nodes[c].kind;
    if (member == "name" && kind == Kind::kString) {
      name = t.Text(c);
    } else if (member == "type" && kind == Kind::kString) {
      type = t.Text(c);
    } else if (member == "function" && kind == Kind::kObject) {
      for (size_t f = c + 1; f < t.nodes[c].end; f = t.nodes[f].end) {
        if (t.Name(f) == "name" && t.nodes[f].kind == Kind::kString) {
          function_name = t.Text(f);
        }
      }
    }
  }
  if (!name.empty()) return name;
  if (!function_name.empty()) return function_name;
  return type;
}

bool IsToolSet(const Tree& t, size_t i) {
  if (t.nodes[i].kind != Kind::kArray ||
      (t.Name(i) != "tools" && t.Name(i) != "functions")) {
    return false;
  }
  for (size_t c = i + 1; c < t.nodes[i].end; c = t.nodes[c].end) {
    if (ToolName(t, c).empty()) return false;
  }
  return true;
}

void SortTools(const Tree& t, std::vector<size_t>::iterator begin,
               std::vector<size_t>::iterator end) {
  std::stable_sort(begin, end, [&t](size_t a, size_t b) {
    return ToolName(t, a) < ToolName(t, b);
  });
}

}  // namespace json_tree
}  // namespace rwd

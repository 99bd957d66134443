// A JSON document as a flat tree, shared by the canonical form
// (src/key/json.cc) and the field-level diff (src/key/json_diff.cc).
// Internal to src/key.
#ifndef REWIND_SRC_KEY_JSON_TREE_H_
#define REWIND_SRC_KEY_JSON_TREE_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "key/json.h"

namespace rwd {
namespace json_tree {

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

// Parses "text" into *tree (cleared first) with "rules" applied as the
// canonical form applies them. False when "text" is not JSON as
// CanonicalJson accepts it.
bool Build(const std::string& text, const BodyRules& rules, Tree* tree);

// Tool sets (BodyRules::tool_sets): the root's "tools" and "functions"
// members, when each is a list of objects that each name a tool, key as
// sets. An item's name is its "name", else its "function"'s "name", else
// (a built-in tool, as the Responses API has: {"type":"web_search"}) its
// "type"; each a string.

// Whether node "i" is such a list: an array named "tools" or "functions",
// every item named. REQUIRES: "i" is a member of the root object (the
// caller knows where it is; finding out would cost a walk per array).
bool IsToolSet(const Tree& t, size_t i);
// The name of item "i" of a tool set, or empty when it has none.
std::string_view ToolName(const Tree& t, size_t i);
// Orders the items [begin, end) of a tool set by name (bytewise; items of
// one name keep their order).
void SortTools(const Tree& t, std::vector<size_t>::iterator begin,
               std::vector<size_t>::iterator end);

}  // namespace json_tree
}  // namespace rwd

#endif  // REWIND_SRC_KEY_JSON_TREE_H_

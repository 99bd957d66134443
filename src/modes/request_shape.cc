#include "modes/request_shape.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <string_view>

namespace rwd {
namespace {

// SAX handler reading the shape fields, which all sit within four levels
// of the root; deeper values are passed over.
class ShapeReader
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ShapeReader> {
 public:
  explicit ShapeReader(RequestShape* shape) : s_(shape) {}

  bool jsonrpc() const { return jsonrpc_; }
  bool object() const { return object_; }

  bool Null() { return Scalar("null", false, false); }
  bool Bool(bool b) { return Scalar(b ? "true" : "false", false, b); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return Scalar(std::string_view(s, n), false, false);
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return Scalar(std::string_view(s, n), true, false);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (depth_ <= kTracked) path_[depth_ - 1].assign(s, n);
    return true;
  }
  bool StartObject() { return Start(true); }
  bool StartArray() { return Start(false); }
  bool EndObject(rapidjson::SizeType) { return End(); }
  bool EndArray(rapidjson::SizeType) { return End(); }

  // The item being read closes: its name joins the tools.
  void ToolDone() {
    std::string name = !item_name_.empty()       ? item_name_
                       : !item_function_.empty() ? item_function_
                                                 : item_type_;
    if (!name.empty()) s_->tools.push_back(std::move(name));
  }

 private:
  static constexpr size_t kTracked = 4;

  // Where the value being read sits: depth 1 is a member of the root.
  // array_[d] tells whether the container at depth d is an array.
  bool At(std::initializer_list<std::string_view> names) const {
    if (names.size() != depth_) return false;
    size_t d = 0;
    for (std::string_view n : names) {
      if (n == "[]") {
        if (!array_[d]) return false;
      } else if (array_[d] || path_[d] != n) {
        return false;
      }
      ++d;
    }
    return true;
  }
  bool InTools() const {
    return depth_ >= 2 && !array_[0] && array_[1] &&
           (path_[0] == "tools" || path_[0] == "functions");
  }

  // A scalar: its text, whether it is a string, whether it is true.
  bool Scalar(std::string_view text, bool string, bool is_true) {
    if (depth_ == 0) return true;
    if (At({"model"})) {
      s_->model = string ? "\"" + std::string(text) + "\"" : std::string(text);
    } else if (At({"stream"})) {
      s_->stream = is_true;
    } else if (At({"method"}) && string) {
      s_->method = std::string(text);
    } else if (At({"jsonrpc"})) {
      jsonrpc_ = true;
    } else if (string && (At({"response_format", "type"}) ||
                          At({"text", "format", "type"}))) {
      s_->response_format += std::string(text) + ";";
    } else if (string && InTools()) {
      if (At({path_[0], "[]", "name"})) item_name_ = std::string(text);
      if (At({path_[0], "[]", "type"})) item_type_ = std::string(text);
      if (At({path_[0], "[]", "function", "name"}))
        item_function_ = std::string(text);
    }
    return true;
  }
  bool Start(bool object) {
    if (depth_ == 0) object_ = object;
    // A model that is not a scalar: the diff names how it differs.
    if (At({"model"})) s_->model = object ? "{}" : "[]";
    if (InTools() && depth_ == 2) {
      item_name_.clear();
      item_function_.clear();
      item_type_.clear();
    }
    if (depth_ < kTracked) array_[depth_] = !object;
    ++depth_;
    return true;
  }
  bool End() {
    --depth_;
    if (depth_ == 2 && InTools()) ToolDone();
    return true;
  }

  RequestShape* s_;
  size_t depth_ = 0;
  std::string path_[kTracked];  // the member name at each tracked depth
  bool array_[kTracked] = {};
  bool jsonrpc_ = false, object_ = false;
  std::string item_name_, item_function_, item_type_;
};

}  // namespace

RequestShape RequestShape::Of(const std::string& body) {
  RequestShape shape;
  ShapeReader reader(&shape);
  rapidjson::Reader parser;
  rapidjson::MemoryStream ms(body.data(), body.size());
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag;
  if (parser.Parse<kFlags>(ms, reader).IsError() || !reader.object()) {
    return RequestShape();
  }
  if (!reader.jsonrpc()) shape.method.clear();
  std::sort(shape.tools.begin(), shape.tools.end());
  shape.tools.erase(std::unique(shape.tools.begin(), shape.tools.end()),
                    shape.tools.end());
  return shape;
}

std::vector<std::string> ShapeDifferences(
    const std::string& recorded, const std::string& sent,
    const std::vector<std::string>& ignored) {
  const RequestShape a = RequestShape::Of(recorded);
  const RequestShape b = RequestShape::Of(sent);
  auto kept = [&ignored](std::string_view member) {
    return std::find(ignored.begin(), ignored.end(), member) == ignored.end();
  };
  std::vector<std::string> out;
  if (a.model != b.model && kept("model")) out.push_back("model");
  if (a.stream != b.stream && kept("stream")) out.push_back("stream");
  if (a.method != b.method && kept("method")) out.push_back("method");
  if (a.tools != b.tools && kept("tools") && kept("functions")) {
    out.push_back("tools");
  }
  if (a.response_format != b.response_format && kept("response_format") &&
      kept("text")) {
    out.push_back("response_format");
  }
  return out;
}

}  // namespace rwd

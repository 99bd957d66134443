#include "store/codec.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstring>

namespace rwd {
namespace {

void PutInt64(std::string* out, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(u >> (8 * i)));
}

int64_t GetInt64(const char* p) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) {
    u |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return static_cast<int64_t>(u);
}

}  // namespace

std::string EncodeHeaders(const HeaderList& headers) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartArray();
  for (const auto& [name, value] : headers) {
    w.StartArray();
    w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    w.EndArray();
  }
  w.EndArray();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Status DecodeHeaders(const std::string& json, HeaderList* out) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsArray()) {
    return Status::Corruption("stored headers are not a JSON array");
  }
  for (const auto& pair : doc.GetArray()) {
    if (!pair.IsArray() || pair.Size() != 2 || !pair[0].IsString() ||
        !pair[1].IsString()) {
      return Status::Corruption("stored header is not a [name, value] pair");
    }
    out->emplace_back(
        std::string(pair[0].GetString(), pair[0].GetStringLength()),
        std::string(pair[1].GetString(), pair[1].GetStringLength()));
  }
  return Status::Ok();
}

std::string EncodeTimeline(const std::vector<Chunk>& chunks) {
  std::string out;
  out.reserve(chunks.size() * 16);
  for (const Chunk& c : chunks) {
    PutInt64(&out, c.offset_us);
    PutInt64(&out, static_cast<int64_t>(c.data.size()));
  }
  return out;
}

Status DecodeTimeline(const std::string& timeline, const std::string& body,
                      std::vector<Chunk>* out) {
  if (timeline.size() % 16 != 0) {
    return Status::Corruption("timeline length is not a multiple of 16");
  }
  size_t pos = 0;
  out->reserve(timeline.size() / 16);
  for (size_t i = 0; i < timeline.size(); i += 16) {
    int64_t offset = GetInt64(timeline.data() + i);
    int64_t length = GetInt64(timeline.data() + i + 8);
    if (length < 0 || static_cast<uint64_t>(length) > body.size() - pos) {
      return Status::Corruption("timeline chunk runs past the stored body");
    }
    out->push_back(
        Chunk{offset, body.substr(pos, static_cast<size_t>(length))});
    pos += static_cast<size_t>(length);
  }
  if (pos != body.size()) {
    return Status::Corruption("timeline does not cover the stored body");
  }
  return Status::Ok();
}

}  // namespace rwd

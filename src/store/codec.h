// Encodings of the columns that are not plain SQL values. Internal.
//
//   headers  JSON array of [name, value] pairs, in order: readable with
//            the sqlite3 shell.
//   timeline BLOB of little-endian int64 pairs (offset_us, length), one per
//            chunk; the chunks' bytes are concatenated in response_body.
#ifndef REWIND_SRC_STORE_CODEC_H_
#define REWIND_SRC_STORE_CODEC_H_

#include <string>

#include "rewind/exchange.h"
#include "rewind/status.h"

namespace rwd {

std::string EncodeHeaders(const HeaderList& headers);
Status DecodeHeaders(const std::string& json, HeaderList* out);

std::string EncodeTimeline(const std::vector<Chunk>& chunks);
// Splits "body" into chunks as "timeline" says; Corruption if they disagree.
Status DecodeTimeline(const std::string& timeline, const std::string& body,
                      std::vector<Chunk>* out);

}  // namespace rwd

#endif  // REWIND_SRC_STORE_CODEC_H_

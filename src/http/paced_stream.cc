#include "http/paced_stream.h"

#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <utility>

namespace rwd {

PacedStream::PacedStream(std::string head, Timeline timeline, int64_t start_us,
                         Framing framing)
    : head_(std::move(head)),
      timeline_(std::move(timeline)),
      start_us_(start_us),
      framing_(framing) {
  if (timeline_.response) {
    for (const Chunk& c : timeline_.response->chunks) total_ += c.data.size();
  }
}

std::unique_ptr<PacedStream> PacedStream::Now(std::string bytes) {
  // Clock readings are never negative: due from the start.
  return std::make_unique<PacedStream>(std::move(bytes), Timeline{}, 0,
                                       Framing::kNone);
}

void PacedStream::TakeDue(int64_t now_us) {
  if (!head_taken_) {
    if (now_us < head_due_us()) return;
    head_taken_ = true;
    out_ = std::move(head_);
    head_.clear();
  }
  if (framing_ == Framing::kNone) return;
  const auto& chunks = timeline_.response->chunks;
  for (; next_ < chunks.size(); ++next_) {
    if (now_us < start_us_ + timeline_.at.chunk_us[next_]) return;
    const std::string& data = chunks[next_].data;
    // An empty chunk would end a chunked body early; it carries nothing.
    if (data.empty()) continue;
    if (framing_ == Framing::kChunked) {
      char line[24];
      auto end =
          std::to_chars(line, line + sizeof(line) - 2, data.size(), 16).ptr;
      *end++ = '\r';
      *end++ = '\n';
      out_.append(line, static_cast<size_t>(end - line));
      out_ += data;
      out_ += "\r\n";
    } else {
      out_ += data;
    }
    body_bytes_ += data.size();
  }
  if (framing_ == Framing::kChunked && !terminated_ &&
      timeline_.end == Timeline::End::kClean) {
    out_ += "0\r\n\r\n";
    terminated_ = true;
  }
}

bool PacedStream::Flush(int fd) {
  while (out_sent_ < out_.size()) {
    const ssize_t n = send(fd, out_.data() + out_sent_, out_.size() - out_sent_,
                           MSG_NOSIGNAL);
    if (n > 0) {
      out_sent_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  out_.clear();
  out_sent_ = 0;
  return true;
}

bool PacedStream::Finished() const {
  return head_taken_ && (framing_ == Framing::kNone ||
                         next_ == timeline_.response->chunks.size());
}

PacedStream::Next PacedStream::Step(int fd, int64_t now_us) {
  // Nothing new is taken while earlier bytes wait for room: the timeline
  // pauses with its reader. Once they are out, what fell due meanwhile
  // goes at once.
  for (int round = 0; round < 2; ++round) {
    if (out_.empty()) TakeDue(now_us);
    if (!Flush(fd)) return {State::kBroken};
    if (!out_.empty()) return {State::kWaitWritable};
  }
  if (!Finished()) {
    return {State::kWaitUntil, head_taken_
                                   ? start_us_ + timeline_.at.chunk_us[next_]
                                   : head_due_us()};
  }
  const bool clean =
      timeline_.end == Timeline::End::kClean &&
      (framing_ != Framing::kLength || timeline_.content_length == 0 ||
       timeline_.content_length == total_);
  return {clean ? State::kDone : State::kBroken};
}

}  // namespace rwd

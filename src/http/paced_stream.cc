#include "http/paced_stream.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <utility>

namespace rwd {
namespace {

// The most pieces one sendmsg carries.
constexpr size_t kMaxIov = 64;
// The most pieces queued at once: an answer of thousands of events all due
// now is taken a batch at a time as the socket drains, so a reader that
// stops holds a batch of segments, not one for every event.
constexpr size_t kMaxQueued = 256;

}  // namespace

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

void PacedStream::Own(const char* data, size_t size) {
  const size_t at = own_.size();
  own_.append(data, size);
  if (!out_.empty() && out_.back().data == nullptr &&
      out_.back().offset + out_.back().size == at) {
    out_.back().size += size;  // adjacent framing: one segment
  } else {
    out_.push_back(Segment{nullptr, at, size});
  }
}

void PacedStream::TakeDue(int64_t now_us) {
  if (!head_taken_) {
    if (now_us < head_due_us()) return;
    head_taken_ = true;
    own_ = std::move(head_);
    head_.clear();
    if (!own_.empty()) out_.push_back(Segment{nullptr, 0, own_.size()});
  }
  if (framing_ == Framing::kNone) return;
  const auto& chunks = timeline_.response->chunks;
  for (; next_ < chunks.size(); ++next_) {
    if (now_us < start_us_ + timeline_.at.chunk_us[next_]) return;
    if (out_.size() >= kMaxQueued) return;
    const std::string& data = chunks[next_].data;
    // An empty chunk would end a chunked body early; it carries nothing.
    if (data.empty()) continue;
    if (framing_ == Framing::kChunked) {
      char line[24];
      auto end =
          std::to_chars(line, line + sizeof(line) - 2, data.size(), 16).ptr;
      *end++ = '\r';
      *end++ = '\n';
      Own(line, static_cast<size_t>(end - line));
    }
    // Sent from the recording itself, which the Timeline keeps alive.
    out_.push_back(Segment{data.data(), 0, data.size()});
    if (framing_ == Framing::kChunked) Own("\r\n", 2);
    body_bytes_ += data.size();
  }
  if (framing_ == Framing::kChunked && !terminated_ &&
      timeline_.end == Timeline::End::kClean) {
    Own("0\r\n\r\n", 5);
    terminated_ = true;
  }
}

bool PacedStream::Flush(int fd) {
  while (sent_ < out_.size()) {
    iovec iov[kMaxIov];
    size_t count = 0;
    for (size_t i = sent_; i < out_.size() && count < kMaxIov; ++i, ++count) {
      const Segment& s = out_[i];
      const char* base = s.data ? s.data : own_.data() + s.offset;
      iov[count].iov_base = const_cast<char*>(base);
      iov[count].iov_len = s.size;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    const ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      return false;
    }
    // Drop what went out; a segment sent in part keeps its rest.
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      Segment& s = out_[sent_];
      const size_t take = std::min(left, s.size);
      if (s.data) {
        s.data += take;
      } else {
        s.offset += take;
      }
      s.size -= take;
      left -= take;
      if (s.size == 0) ++sent_;
    }
  }
  out_.clear();
  own_.clear();
  sent_ = 0;
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
  for (int round = 0; round < 8; ++round) {
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

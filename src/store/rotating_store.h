// RotatingStore: one capture written as a series of recording files, for
// captures that run for hours or days (record --rotate-every).
//
// It is a Store that writes to a current file and, once that file is old
// enough or large enough, writes the next exchanges to a new one beside it:
// rec.sqlite, then rec-0002.sqlite, rec-0003.sqlite, ... (the --db name
// with a four-digit number before its extension; a number whose file
// exists already is skipped). Every file carries the key rules of the
// first, so `rewind merge` combines them.
//
// No exchange is lost or split: an Append() goes whole to the file that is
// current when it is queued, and its ticket is answered by that file's
// store. The next file is opened ahead by a background thread, once the
// current one is half-way to due, and the last one settled (committed,
// folded into one self-contained file) by another: a request never waits
// for either, only for the swap of one pointer. Until the next file is
// open, exchanges go on into the current one. A file opened ahead and not
// used, or made current and given nothing, is removed at the end. A rotation is
// due when the current file has at least one exchange and is "every_us"
// old or "every_bytes" large (WriterStats::bytes); when opening the next
// file fails, writing goes on into the current one, and it is tried again
// a second later. Ages and sizes are checked on Append(): a capture with
// no traffic makes no files.
//
// Reads (Get, Scan, Count, ...) and maintenance see the current file
// alone. writer_stats() adds up every file of the run: exchanges written,
// commits, failures, and bytes (so caps count the whole capture).
//
// Thread-safety: all methods are safe for concurrent use.
#ifndef REWIND_SRC_STORE_ROTATING_STORE_H_
#define REWIND_SRC_STORE_ROTATING_STORE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rewind/clock.h"
#include "rewind/store.h"

namespace rwd {

struct RotationOptions {
  // Rotate once the current file is this old, in microseconds on "clock";
  // 0: never by age. Default: 0.
  int64_t every_us = 0;
  // Rotate once the current file is this large (WriterStats::bytes); 0:
  // never by size. Default: 0.
  uint64_t every_bytes = 0;
  // Time source for "every_us". Default: SystemClock().
  Clock* clock = nullptr;
  // Told of each rotation and of each failure to open the next file.
  // Default: nothing.
  std::function<void(const std::string&)> log;
};

// "rec.sqlite", 2 -> "rec-0002.sqlite"; "rec", 12 -> "rec-0012".
std::string RotatedPath(const std::string& path, int number);

class RotatingStore final : public Store {
 public:
  // Takes over "first", the store open for writing on "options.path";
  // later files are opened with "options", their path replaced and the
  // rules set to the first's. REQUIRES: rotation.every_us or every_bytes.
  static Result<std::unique_ptr<Store>> Wrap(std::unique_ptr<Store> first,
                                             StoreOptions options,
                                             RotationOptions rotation);

  // Stops rotating, settles any file being closed, then the current one.
  ~RotatingStore() override;

  const KeyRules& rules() const override { return rules_; }
  std::shared_ptr<Ticket> Append(Exchange exchange) override;
  std::shared_ptr<Ticket> AppendRecorded(Exchange exchange) override;
  Result<int64_t> WaitCommitted(const std::shared_ptr<Ticket>& t) override;
  Status Flush() override;
  Status WriteHealth() const override;
  WriterStats writer_stats() const override;
  Status Settle() override;

  Result<Exchange> Get(int64_t id) override;
  Result<std::vector<StoredRequest>> GetRequests(
      const std::vector<int64_t>& ids, size_t max_body) override;
  Status Scan(const std::function<void(const ExchangeSummary&)>& fn) override;
  Status ScanKeys(
      const std::function<void(const ExchangeSummary&)>& fn) override;
  Result<int64_t> Count() override;
  Status SetRules(const KeyRules& rules) override;
  Status UpdateKeys(
      const std::vector<std::pair<int64_t, std::string>>& keys) override;
  Status Delete(const std::vector<int64_t>& ids) override;
  Result<std::string> IntegrityCheck() override;

  // The file exchanges go to now.
  std::string current_path() const;

 private:
  RotatingStore(std::unique_ptr<Store> first, StoreOptions options,
                RotationOptions rotation);

  std::shared_ptr<Store> Current() const;
  // Append() or, "recorded", AppendRecorded() on the current file.
  std::shared_ptr<Ticket> Queue(Exchange exchange, bool recorded);
  // Whether the current file is half-way to due (it holds an exchange,
  // and is half as old or large as it may be) or due: the rotator is then
  // asked to make the next file ready, or current.
  void RequestIfDue();
  void RotatorLoop();
  // Opens the next file, ready to take over.
  void Prepare();
  // Makes the ready file current; has the old one closed.
  void Swap();
  // Settles a file no longer current and folds its numbers into
  // closed_stats_.
  void Close(std::shared_ptr<Store> store, const std::string& path);
  void Log(const std::string& message) const;

  const StoreOptions options_;  // of the first file
  const RotationOptions rotation_;
  Clock* const clock_;
  const KeyRules rules_;

  // The current file; guarded by current_mu_. A plain mutex: held for
  // an Append()'s queueing alone, and a reader-preferring shared mutex
  // would keep the swap waiting for as long as appends overlap.
  mutable std::mutex current_mu_;
  std::shared_ptr<Store> current_;
  std::string current_path_;
  int64_t opened_us_ = 0;  // when current_ became current
  // Exchanges queued to current_ (written under current_mu_).
  std::atomic<uint64_t> appended_current_{0};

  // The rotator thread and what it is asked.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool prepare_wanted_ = false;  // guarded by mu_
  bool wanted_ = false;          // guarded by mu_: the swap
  bool stopping_ = false;        // guarded by mu_
  // The next file, opened ahead; guarded by mu_.
  std::shared_ptr<Store> prepared_;
  std::string prepared_path_;
  int64_t retry_at_us_ = 0;  // guarded by mu_: after a failed open
  int next_number_ = 2;      // guarded by mu_
  // Files no longer current, until settled; guarded by mu_.
  std::vector<std::shared_ptr<Store>> closing_;
  WriterStats closed_stats_;  // guarded by mu_: the settled files'
  std::thread rotator_;
  // One per rotation, settling the file it closed; joined once done.
  struct Closer {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Closer> closers_;  // guarded by mu_
};

}  // namespace rwd

#endif  // REWIND_SRC_STORE_ROTATING_STORE_H_

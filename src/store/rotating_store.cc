#include "store/rotating_store.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "store/ticket.h"

namespace rwd {
namespace {

constexpr int64_t kRetryUs = 1'000'000;  // after a failed open

void Add(Store::WriterStats* to, const Store::WriterStats& w) {
  to->queued += w.queued;
  to->written += w.written;
  to->commits += w.commits;
  to->failures += w.failures;
  to->commit_seconds += w.commit_seconds;
  to->bytes += w.bytes;
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec) || ec;
}

}  // namespace

std::string RotatedPath(const std::string& path, int number) {
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "-%04d", number);
  const size_t slash = path.rfind('/');
  const size_t dot = path.rfind('.');
  const bool has_extension = dot != std::string::npos && dot > 0 &&
                             (slash == std::string::npos || dot > slash + 1);
  if (!has_extension) return path + suffix;
  return path.substr(0, dot) + suffix + path.substr(dot);
}

RotatingStore::RotatingStore(std::unique_ptr<Store> first, StoreOptions options,
                             RotationOptions rotation)
    : options_(std::move(options)),
      rotation_(std::move(rotation)),
      clock_(rotation_.clock ? rotation_.clock : SystemClock()),
      rules_(first->rules()),
      current_(std::move(first)),
      current_path_(options_.path),
      opened_us_(clock_->NowMicros()) {
  // Numbers go on after the highest file of an earlier capture.
  for (int n = 2; n < 10000; ++n) {
    if (Exists(RotatedPath(options_.path, n))) next_number_ = n + 1;
  }
  rotator_ = std::thread([this] { RotatorLoop(); });
}

Result<std::unique_ptr<Store>> RotatingStore::Wrap(std::unique_ptr<Store> first,
                                                   StoreOptions options,
                                                   RotationOptions rotation) {
  if (!first) return Status::InvalidArgument("no recording to rotate");
  if (rotation.every_us <= 0 && rotation.every_bytes == 0) {
    return Status::InvalidArgument("a rotation needs an age or a size");
  }
  return std::unique_ptr<Store>(new RotatingStore(
      std::move(first), std::move(options), std::move(rotation)));
}

RotatingStore::~RotatingStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (rotator_.joinable()) rotator_.join();
  // No rotator: nobody adds closers any more.
  for (Closer& c : closers_) c.thread.join();
  // A file made ready and never used, or made current by a rotation and
  // given nothing before the end, is taken away again.
  std::vector<std::string> unused;
  if (prepared_) {
    prepared_.reset();
    unused.push_back(prepared_path_);
  }
  std::lock_guard<std::mutex> lock(current_mu_);
  if (appended_current_.load() == 0 && current_path_ != options_.path) {
    unused.push_back(current_path_);
  }
  current_.reset();  // the last file settles as any store does
  for (const std::string& path : unused) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::error_code ec;
      std::filesystem::remove(path + suffix, ec);
    }
  }
}

std::shared_ptr<Store> RotatingStore::Current() const {
  std::lock_guard<std::mutex> lock(current_mu_);
  return current_;
}

std::string RotatingStore::current_path() const {
  std::lock_guard<std::mutex> lock(current_mu_);
  return current_path_;
}

void RotatingStore::Log(const std::string& message) const {
  if (rotation_.log) rotation_.log(message);
}

std::shared_ptr<Store::Ticket> RotatingStore::Append(Exchange exchange) {
  return Queue(std::move(exchange), /*recorded=*/false);
}

std::shared_ptr<Store::Ticket> RotatingStore::AppendRecorded(
    Exchange exchange) {
  return Queue(std::move(exchange), /*recorded=*/true);
}

std::shared_ptr<Store::Ticket> RotatingStore::Queue(Exchange exchange,
                                                    bool recorded) {
  auto ticket = std::make_shared<Ticket>();
  {
    // Queued whole to the file that is current now: the swap waits for
    // it, and that file's store answers its ticket.
    std::lock_guard<std::mutex> lock(current_mu_);
    ticket->delegate = current_;
    ticket->inner = recorded ? current_->AppendRecorded(std::move(exchange))
                             : current_->Append(std::move(exchange));
    ++appended_current_;
  }
  RequestIfDue();
  return ticket;
}

Result<int64_t> RotatingStore::WaitCommitted(const std::shared_ptr<Ticket>& t) {
  if (!t->delegate) return t->status;
  return t->delegate->WaitCommitted(t->inner);
}

void RotatingStore::RequestIfDue() {
  // Half-way to due, the next file is made ready; due, it becomes current.
  bool half = false;
  bool due = false;
  {
    std::lock_guard<std::mutex> lock(current_mu_);
    if (appended_current_.load() == 0) return;
    if (rotation_.every_us > 0) {
      const int64_t age = clock_->NowMicros() - opened_us_;
      half = age >= rotation_.every_us / 2;
      due = age >= rotation_.every_us;
    }
    if (rotation_.every_bytes > 0 && !due) {
      const uint64_t bytes = current_->writer_stats().bytes;
      half = half || bytes >= rotation_.every_bytes / 2;
      due = bytes >= rotation_.every_bytes;
    }
  }
  if (!half) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if ((!half || prepare_wanted_) && (!due || wanted_)) return;
    prepare_wanted_ = true;
    if (due) wanted_ = true;
  }
  cv_.notify_all();
}

void RotatingStore::RotatorLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    // A failed open is tried again a second later.
    const int64_t retry_us = retry_at_us_ - clock_->NowMicros();
    auto ready = [this] {
      return stopping_ ||
             (!prepared_ && prepare_wanted_ &&
              clock_->NowMicros() >= retry_at_us_) ||
             (prepared_ && wanted_);
    };
    if (retry_us > 0 && !prepared_) {
      cv_.wait_for(lock, std::chrono::microseconds(retry_us), ready);
    } else {
      cv_.wait(lock, ready);
    }
    if (stopping_) return;
    if (!prepared_ && prepare_wanted_ && clock_->NowMicros() >= retry_at_us_) {
      lock.unlock();
      Prepare();
      lock.lock();
      continue;
    }
    if (prepared_ && wanted_) {
      lock.unlock();
      Swap();
      lock.lock();
      wanted_ = false;
      prepare_wanted_ = false;
    }
  }
}

void RotatingStore::Prepare() {
  int number;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (next_number_ < 10000 &&
           Exists(RotatedPath(options_.path, next_number_))) {
      ++next_number_;
    }
    number = next_number_;
  }
  const std::string path = RotatedPath(options_.path, number);
  Result<std::unique_ptr<Store>> opened =
      Status::IOError("files up to number 9999 exist already");
  if (number < 10000) {
    StoreOptions o = options_;
    o.path = path;
    o.create_if_missing = true;
    o.read_only = false;
    o.rules = rules_;
    opened = Store::Open(o);
  }
  if (!opened.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      retry_at_us_ = clock_->NowMicros() + kRetryUs;
    }
    Log("cannot open the next recording file " + path + " (" +
        opened.status().message() + "); recording goes on into " +
        current_path() + ", and the next file is tried again in a second");
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  next_number_ = number + 1;
  prepared_ = std::shared_ptr<Store>(std::move(opened.value()));
  prepared_path_ = path;
}

void RotatingStore::Swap() {
  std::shared_ptr<Store> old;
  std::string old_path;
  std::string path;
  {
    std::lock_guard<std::mutex> swap(current_mu_);
    std::lock_guard<std::mutex> lock(mu_);
    old = std::move(current_);
    old_path = std::move(current_path_);
    current_ = std::move(prepared_);
    current_path_ = path = std::move(prepared_path_);
    prepared_.reset();
    opened_us_ = clock_->NowMicros();
    appended_current_ = 0;
    // Counted by writer_stats() from the swap on, until settled.
    closing_.push_back(old);
  }
  Log("rotated: " + old_path + " is closed; recording into " + path);
  // Settling it (commits, a checkpoint, fsyncs) takes a while: on a thread
  // of its own, so the rotator is free for the next file meanwhile.
  std::lock_guard<std::mutex> lock(mu_);
  // Those done by now are joined: a capture of days rotates many times.
  for (auto it = closers_.begin(); it != closers_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = closers_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  closers_.push_back(Closer{
      std::thread([this, old = std::move(old), old_path, done]() mutable {
        Close(std::move(old), old_path);
        *done = true;
      }),
      done});
}

void RotatingStore::Close(std::shared_ptr<Store> store,
                          const std::string& path) {
  // Every Append() to it was queued before the swap: Settle() commits
  // them all, then folds the log into the file.
  Status settled = store->Settle();
  if (!settled.ok()) {
    Log("closing " + path + ": " + settled.message());
  }
  std::lock_guard<std::mutex> lock(mu_);
  Add(&closed_stats_, store->writer_stats());
  closed_stats_.queued = 0;
  for (auto it = closing_.begin(); it != closing_.end(); ++it) {
    if (*it == store) {
      closing_.erase(it);
      break;
    }
  }
}

Status RotatingStore::Flush() {
  std::vector<std::shared_ptr<Store>> stores;
  {
    std::lock_guard<std::mutex> current(current_mu_);
    std::lock_guard<std::mutex> lock(mu_);
    stores = closing_;
    stores.push_back(current_);
  }
  Status result;
  for (const auto& s : stores) {
    Status flushed = s->Flush();
    if (!flushed.ok()) result = flushed;
  }
  return result;
}

Status RotatingStore::WriteHealth() const { return Current()->WriteHealth(); }

Store::WriterStats RotatingStore::writer_stats() const {
  std::lock_guard<std::mutex> current(current_mu_);
  std::lock_guard<std::mutex> lock(mu_);
  WriterStats w = closed_stats_;
  for (const auto& s : closing_) Add(&w, s->writer_stats());
  Add(&w, current_->writer_stats());
  return w;
}

Status RotatingStore::Settle() { return Current()->Settle(); }

Result<Exchange> RotatingStore::Get(int64_t id) { return Current()->Get(id); }

Result<std::vector<StoredRequest>> RotatingStore::GetRequests(
    const std::vector<int64_t>& ids, size_t max_body) {
  return Current()->GetRequests(ids, max_body);
}

Status RotatingStore::Scan(
    const std::function<void(const ExchangeSummary&)>& fn) {
  return Current()->Scan(fn);
}

Status RotatingStore::ScanKeys(
    const std::function<void(const ExchangeSummary&)>& fn) {
  return Current()->ScanKeys(fn);
}

Result<int64_t> RotatingStore::Count() { return Current()->Count(); }

Status RotatingStore::SetRules(const KeyRules& rules) {
  return Current()->SetRules(rules);
}

Status RotatingStore::UpdateKeys(
    const std::vector<std::pair<int64_t, std::string>>& keys) {
  return Current()->UpdateKeys(keys);
}

Status RotatingStore::Delete(const std::vector<int64_t>& ids) {
  return Current()->Delete(ids);
}

Result<std::string> RotatingStore::IntegrityCheck() {
  return Current()->IntegrityCheck();
}

}  // namespace rwd

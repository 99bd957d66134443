// Store::Ticket: the state of one queued write, shared by the store that
// queued it and the caller waiting for it. Internal to src/store/: callers
// only hold a std::shared_ptr<Store::Ticket> and pass it back.
#ifndef REWIND_SRC_STORE_TICKET_H_
#define REWIND_SRC_STORE_TICKET_H_

#include <cstdint>
#include <memory>

#include "rewind/status.h"
#include "rewind/store.h"

namespace rwd {

// Guarded by the lock of the store that made the ticket.
struct Store::Ticket {
  bool done = false;  // committed, or failed
  int64_t id = 0;     // the exchange's id once committed
  Status status;      // why the commit failed
  // A store that hands writes on (RotatingStore): the store that took this
  // one, and its ticket there. Set once, before the ticket is returned.
  std::shared_ptr<Store> delegate;
  std::shared_ptr<Ticket> inner;
};

}  // namespace rwd

#endif  // REWIND_SRC_STORE_TICKET_H_

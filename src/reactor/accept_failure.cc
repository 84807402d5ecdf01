#include <cerrno>
#include <cstring>

#include "mailwing/reactor/backend.hh"
#include "mailwing/util/log.hh"

namespace mailwing::reactor {

bool accept_needs_pause(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

void log_accept_failure(int error) {
  if (accept_needs_pause(error)) {
    MW_LOG_WARN_LIMITED(10000, "accept failed: %s; pausing accepts for %llu ms at a time until it passes",
                        std::strerror(error), static_cast<unsigned long long>(accept_pause_ms));
    return;
  }
  MW_LOG_WARN_LIMITED(10000, "accept failed: %s", std::strerror(error));
}

}  // namespace mailwing::reactor

#include "bounds.hh"

#include <string>

#include "mailwing/config/config.hh"

namespace mailwing::config {

void throw_out_of_bounds(const integer_bound& bound) {
  throw config_error(std::string(bound.key) + ": must be an integer between " +
                     std::to_string(bound.min) + " and " + std::to_string(bound.max));
}

}  // namespace mailwing::config

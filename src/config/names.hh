#pragma once
// Syntax of the names a config holds (domains, mailbox addresses) and how error messages
// show user-supplied text. Internal to the config module.

#include <string>
#include <string_view>

namespace mailwing::config {

// `text` with '"', '\\' and control bytes escaped, so that an error message stays one line.
std::string escaped(std::string_view text);
// escaped(text) between double quotes.
std::string in_quotes(std::string_view text);

// Letters, digits and '-' in dot-separated labels of 1..63 octets, 253 octets at most;
// no label starts or ends with '-'. Either case.
bool is_dns_name(std::string_view name);

// What is wrong with a user's local part, phrased to follow the address in a message
// ("\"a+b@x\" has ..."); empty when it is acceptable. Expects lower case, non-empty.
std::string_view local_part_problem(std::string_view local);

}  // namespace mailwing::config

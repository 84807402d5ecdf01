#pragma once
// The command line: `mailwing serve [--config PATH] [overrides]`,
// `mailwing hash-password [PASSWORD]`, `mailwing --version`, `mailwing --help`.

namespace mailwing::server {

// Returns the process exit code. Bad arguments: one line on stderr and exit code 2;
// a bad config: one line on stderr and exit code 1.
int main_command_line(int argc, char** argv);

}  // namespace mailwing::server

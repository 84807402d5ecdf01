// mailwing: SMTP ingestion into durable per-mailbox logs. See README.md.
#include "mailwing/server/cli.hh"

#ifdef MAILWING_MIMALLOC
// mimalloc replaces malloc by being linked; this also routes operator new/delete to it.
#include <mimalloc-new-delete.h>
#endif

int main(int argc, char** argv) { return mailwing::server::main_command_line(argc, argv); }

/*
 * sandbox: least privilege for the server process. Refuses secret files
 * that other users could read, drops root to a configured user once the
 * listening socket is bound, and confines the process to a seccomp
 * allow-list of system calls once start-up is over (docs/SECURITY.md lists
 * what the allow-list admits and why).
 */
#ifndef COFFER_APP_SANDBOX_H
#define COFFER_APP_SANDBOX_H

#include "util/err.h"

/*
 * Checks that the key and data files under data_dir (coffer.db and its WAL
 * files, keys/keyring.json, tls/server.key, tls/ca.key, audit/signing.key)
 * are regular files (not symbolic links) that neither group nor others may
 * read, write or execute. Missing optional files are fine. Logs one line per
 * refusal, saying how to fix it.
 * Errors: ERR_FORBIDDEN (a file is too open or a link), ERR_IO.
 */
enum err sandbox_check_files(const char *data_dir);

/*
 * When running as root, switches to user name for good: supplementary
 * groups, group and user ids, then checks that root cannot be regained.
 * data_dir and every file and directory in it must be owned by that user
 * (the server reads and writes there), and the user must be able to reach
 * data_dir (checked after the switch). A no-op when name is NULL;
 * ERR_INVALID when name is given but the process is not root or is root.
 * Errors: ERR_NOT_FOUND (no such user), ERR_FORBIDDEN (something in
 * data_dir owned by someone else, or data_dir out of the user's reach),
 * ERR_IO (the tree cannot be listed), ERR_INTERNAL (a set*id call failed).
 */
enum err sandbox_drop_user(const char *name, const char *data_dir);

/*
 * Installs the seccomp allow-list on every thread of the process (any other
 * system call kills the process). Sets no_new_privs. Irreversible.
 * Errors: ERR_INTERNAL (libseccomp or the kernel refused).
 */
enum err sandbox_seccomp(void);

#endif

/*
 * Least privilege for the server (see app/sandbox.h).
 */
#include "app/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

static enum err sandbox_check_one(const char *dir, const char *name, int required)
{
    char path[2200];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return ERR_IO;
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT && !required)
            return ERR_OK;
        log_error("cannot check %s: %s", path, strerror(errno));
        return errno == ENOENT ? ERR_FORBIDDEN : ERR_IO;
    }
    if (!S_ISREG(sb.st_mode)) {
        log_error("%s is not a regular file (a symbolic link?); secrets must be plain files "
                  "in the data directory",
                  path);
        return ERR_FORBIDDEN;
    }
    if ((sb.st_mode & 0077) != 0) {
        log_error("%s is accessible by other users (mode %03o); run 'chmod 600 %s'", path,
                  (unsigned)(sb.st_mode & 0777), path);
        return ERR_FORBIDDEN;
    }
    return ERR_OK;
}

enum err sandbox_check_files(const char *data_dir)
{
    static const struct {
        const char *name;
        int required;
    } files[] = {
        {"coffer.db", 1},          {"coffer.db-wal", 0},    {"coffer.db-shm", 0},
        {"keys/keyring.json", 0},  {"tls/server.key", 0},   {"tls/ca.key", 0},
        {"audit/signing.key", 0},  {"audit/events.log", 0}, {"audit/heads.log", 0},
        {"keys/provider.json", 0}, /* a store on a PKCS#11 token has no keyring file */
    };
    enum err worst = ERR_OK;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        enum err e = sandbox_check_one(data_dir, files[i].name, files[i].required);
        if (e != ERR_OK && worst == ERR_OK)
            worst = e;
    }
    return worst;
}

/* Deepest entry a data directory holds is DIR/blobs/XX/ID; anything far deeper is not Coffer's. */
#define SANDBOX_WALK_DEPTH 16

/*
 * Checks that every entry below the directory open as dfd belongs to uid
 * (symbolic links are not followed). path holds the directory's name in
 * its first len bytes and is extended in place for the entries below (cap
 * bytes in all). Takes ownership of dfd. On a mismatch, path names the
 * first entry found and *owner is its owner. Errors: ERR_FORBIDDEN (an
 * entry belongs to someone else, or the tree is too deep), ERR_IO.
 */
static enum err sandbox_walk_owner(int dfd, char *path, size_t len, size_t cap, uid_t uid,
                                   unsigned depth, uid_t *owner)
{
    DIR *dir = fdopendir(dfd);
    if (dir == NULL) {
        path[len] = '\0';
        log_error("cannot list %s: %s", path, strerror(errno));
        close(dfd);
        return ERR_IO;
    }
    enum err e = ERR_OK;
    while (e == ERR_OK) {
        errno = 0;
        struct dirent *de = readdir(dir);
        if (de == NULL) {
            if (errno != 0) {
                path[len] = '\0';
                log_error("cannot list %s: %s", path, strerror(errno));
                e = ERR_IO;
            }
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        size_t nlen = strlen(de->d_name);
        if (nlen + 2 > cap || len > cap - nlen - 2) {
            path[len] = '\0';
            log_error("a name under %s is too long to check", path);
            e = ERR_IO;
            break;
        }
        path[len] = '/';
        memcpy(path + len + 1, de->d_name, nlen + 1);
        struct stat sb;
        if (fstatat(dirfd(dir), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) /* removed meanwhile (a finished upload) */
                continue;
            log_error("cannot check %s: %s", path, strerror(errno));
            e = ERR_IO;
            break;
        }
        if (sb.st_uid != uid) {
            *owner = sb.st_uid;
            e = ERR_FORBIDDEN;
            break;
        }
        if (!S_ISDIR(sb.st_mode))
            continue;
        if (depth >= SANDBOX_WALK_DEPTH) {
            log_error("%s is nested too deeply for a data directory", path);
            e = ERR_FORBIDDEN;
            break;
        }
        int cfd = openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0) {
            log_error("cannot open %s: %s", path, strerror(errno));
            e = ERR_IO;
            break;
        }
        e = sandbox_walk_owner(cfd, path, len + 1 + nlen, cap, uid, depth + 1, owner);
    }
    closedir(dir);
    return e;
}

/*
 * Checks that data_dir and everything in it belong to the user pw: once
 * root is dropped, a file or directory left to root (by a server or a
 * command run as root) can no longer be read or replaced. SQLite gives the
 * -wal and -shm files the database file's owner when root opens them, so
 * they pass once coffer.db does. Logs one line naming the first stray entry.
 */
static enum err sandbox_check_owner(const struct passwd *pw, const char *data_dir)
{
    struct stat sb;
    if (stat(data_dir, &sb) != 0 || sb.st_uid != pw->pw_uid) {
        log_error("the data directory %s must belong to %s; run 'chown -R %s %s'", data_dir,
                  pw->pw_name, pw->pw_name, data_dir);
        return ERR_FORBIDDEN;
    }
    char path[4096];
    size_t len = strlen(data_dir);
    if (len >= sizeof(path)) {
        log_error("the data directory path is too long");
        return ERR_INVALID;
    }
    memcpy(path, data_dir, len + 1);
    int dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        log_error("cannot open the data directory %s: %s", data_dir, strerror(errno));
        return ERR_IO;
    }
    uid_t owner = pw->pw_uid; /* changed only when a stray entry is found */
    enum err e = sandbox_walk_owner(dfd, path, len, sizeof(path) - 1, pw->pw_uid, 1, &owner);
    if (e == ERR_FORBIDDEN && owner != pw->pw_uid)
        log_error("%s belongs to uid %u, not to %s; run 'chown -R %s %s'", path, (unsigned)owner,
                  pw->pw_name, pw->pw_name, data_dir);
    return e;
}

enum err sandbox_drop_user(const char *name, const char *data_dir)
{
    if (name == NULL)
        return ERR_OK;
    if (geteuid() != 0) {
        log_error("--user needs the server to start as root (it is uid %u)", (unsigned)geteuid());
        return ERR_INVALID;
    }
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
        log_error("no such user: %s", name);
        return ERR_NOT_FOUND;
    }
    if (pw.pw_uid == 0) {
        log_error("--user %s is root; name an unprivileged user", name);
        return ERR_INVALID;
    }
    enum err e = sandbox_check_owner(&pw, data_dir);
    if (e != ERR_OK)
        return e;
    /* Groups first: once the uid changes, they can no longer be changed. */
    if (setgroups(1, &pw.pw_gid) != 0 || setgid(pw.pw_gid) != 0 || setuid(pw.pw_uid) != 0) {
        log_error("cannot switch to user %s: %s", name, strerror(errno));
        return ERR_INTERNAL;
    }
    if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != pw.pw_uid || geteuid() != pw.pw_uid ||
        getgid() != pw.pw_gid || getegid() != pw.pw_gid) {
        log_error("root privileges could be regained after switching to %s; stopping", name);
        return ERR_INTERNAL;
    }
    /* Owning the directory is not enough: every directory above it must let the user through. */
    if (access(data_dir, R_OK | W_OK | X_OK) != 0) {
        log_error("user %s cannot reach the data directory %s (%s); let it through every "
                  "directory above (e.g. 'chmod o+x' on each)",
                  name, data_dir, strerror(errno));
        return ERR_FORBIDDEN;
    }
    log_info("running as user %s (uid %u, gid %u)", name, (unsigned)pw.pw_uid, (unsigned)pw.pw_gid);
    return ERR_OK;
}

/* System calls a running server makes. docs/SECURITY.md explains each group. */
static const char *const sandbox_allowed[] = {
    /* files: the database, blobs, audit log, keyring, TLS material */
    "read",
    "write",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "open",
    "openat",
    "close",
    "lseek",
    "fstat",
    "newfstatat",
    "stat",
    "lstat",
    "statx",
    "fstatfs",
    "statfs",
    "access",
    "faccessat",
    "faccessat2",
    "fcntl",
    "flock",
    "fsync",
    "fdatasync",
    "ftruncate",
    "fallocate",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
    "getdents64",
    "getdents",
    "fchmod",
    "fchown",
    "umask",
    "readlink",
    "readlinkat",
    "getcwd",
    "sync_file_range",
    "copy_file_range",
    "sendfile",
    /* network: accepting clients; syslog forwarding and OIDC key fetches */
    "accept",
    "accept4",
    "socket",
    "connect",
    "bind",
    "listen",
    "shutdown",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "socketpair",
    "ioctl",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "eventfd2",
    "pipe2",
    /* memory */
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "mlock",
    "munlock",
    /* threads, time, signals, randomness */
    "futex",
    "clone",
    "clone3",
    "set_robust_list",
    "rseq",
    "gettid",
    "getpid",
    "getppid",
    "tgkill",
    "sched_yield",
    "sched_getaffinity",
    "nanosleep",
    "clock_nanosleep",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "getrandom",
    "rt_sigprocmask",
    "rt_sigaction",
    "rt_sigreturn",
    "rt_sigtimedwait",
    "sigaltstack",
    "restart_syscall",
    "exit",
    "exit_group",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "uname",
    "sysinfo",
    "getrlimit",
    "prlimit64",
    "prctl",
#ifdef SANDBOX_ASAN
    /* AddressSanitizer's leak check at exit stops the world with ptrace from a helper. */
    "ptrace",
    "wait4",
    "waitid",
    "process_vm_readv",
    "kill",
#endif
};

enum err sandbox_seccomp(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL)
        return ERR_INTERNAL;
    enum err e = ERR_OK;
    if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0 ||
        seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) != 0)
        e = ERR_INTERNAL;
    for (size_t i = 0; e == ERR_OK && i < sizeof(sandbox_allowed) / sizeof(sandbox_allowed[0]);
         i++) {
        int nr = seccomp_syscall_resolve_name(sandbox_allowed[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0)
            e = ERR_INTERNAL;
    }
    if (e == ERR_OK && seccomp_load(ctx) != 0)
        e = ERR_INTERNAL;
    seccomp_release(ctx);
    if (e != ERR_OK)
        log_error("cannot install the seccomp filter; start with --no-seccomp on kernels "
                  "without seccomp");
    else
        log_info("seccomp allow-list installed (%zu system calls)",
                 sizeof(sandbox_allowed) / sizeof(sandbox_allowed[0]));
    return e;
}

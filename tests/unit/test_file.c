/*
 * util/file: writing everything, replacing a private file atomically.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    *len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return buf;
}

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A pipe accepts at most its capacity per write: 1 MiB arrives whole. */
static void test_write_all_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    size_t n = 1 << 20;
    uint8_t *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        _exit(file_write_all(p[1], data, n) == 0 ? 0 : 1);
    }
    close(p[1]);
    uint8_t *got = malloc(n);
    assert_non_null(got);
    size_t off = 0;
    ssize_t r;
    while (off < n && (r = read(p[0], got + off, n - off)) > 0)
        off += (size_t)r;
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_int_equal(off, n);
    assert_memory_equal(got, data, n);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(file_write_all(-1, "x", 1), -1);
    assert_int_equal(errno, EBADF);
    free(data);
    free(got);
}

/* The file is created, then replaced, mode 0600, content plus a newline, and
 * no temporary file stays behind; a path too long is refused. */
static void test_replace_private(void **state)
{
    (void)state;
    char dir[] = "/tmp/coffer-file-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/secret.json", dir);
    assert_int_equal(file_replace_private(path, "{\"a\":1}", 7), 0);
    size_t len;
    char *got = slurp(path, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(got, "{\"a\":1}\n", 8);
    assert_int_equal(file_replace_private(path, "{}", 2), 0);
    got = slurp(path, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(got, "{}\n", 3);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(entries(dir), 1);
    assert_int_equal(file_sync_parent(path), 0);
    char *longp = malloc(PATH_MAX + 16);
    assert_non_null(longp);
    memset(longp, 'a', PATH_MAX + 15);
    longp[0] = '/';
    longp[PATH_MAX + 15] = '\0';
    assert_int_equal(file_replace_private(longp, "x", 1), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    free(longp);
    /* A directory that does not exist: nothing is created. */
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/no/such.json", dir);
    assert_int_equal(file_replace_private(missing, "x", 1), -1);
    assert_int_equal(entries(dir), 1);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_all_pipe),
        cmocka_unit_test(test_replace_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

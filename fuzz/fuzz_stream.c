/*
 * Fuzz target for the stream reader: the input is an untrusted ciphertext
 * file. It goes through header parsing, layout checks and every segment's
 * authentication, both through the random-access reader and through
 * stream_decrypt_fd. The seed corpus holds valid streams sealed with the key
 * and identity below.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crypt/stream.h"

static const uint8_t fuzz_key[32] = {
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};
static const char fuzz_identity[] = "fuzz-blob";

static int fuzz_count_sink(void *ctx, const uint8_t *buf, size_t len)
{
    (void)buf;
    *(uint64_t *)ctx += len;
    return 0;
}

/*
 * Opens every segment with the random-access API and checks the layout
 * invariants. Returns 1 if every segment authenticated (*plain_out is then
 * the plaintext size), 0 otherwise.
 */
static int fuzz_reader(const uint8_t *data, size_t size, uint64_t *plain_out)
{
    struct stream_reader *r = NULL;
    if (stream_reader_new(&r, fuzz_key, (const uint8_t *)fuzz_identity, strlen(fuzz_identity), data,
                          size, size) != ERR_OK)
        return 0;
    const uint64_t count = stream_reader_segment_count(r);
    const uint32_t seg = stream_reader_segment_size(r);
    const uint64_t plain_size = stream_reader_plaintext_size(r);
    /* The size a writer would produce for this plaintext is exactly the input size. */
    if (count == 0 || stream_ciphertext_size(plain_size, seg) != size)
        abort();
    uint8_t *plain = malloc(size);
    if (plain == NULL)
        abort();
    uint64_t opened = 0, plain_total = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t off = stream_reader_segment_offset(r, i);
        size_t sealed_len = stream_reader_segment_sealed_len(r, i), n = 0;
        if (sealed_len < STREAM_TAG_LEN || off > size || sealed_len > size - off)
            abort();
        if (stream_reader_open_segment(r, i, data + off, sealed_len, plain, size, &n) == ERR_OK) {
            opened++;
            plain_total += n;
        }
    }
    free(plain);
    stream_reader_free(r);
    if (opened == count && plain_total != plain_size)
        abort();
    *plain_out = plain_total;
    return opened == count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t plain_size = 0;
    int all_opened = fuzz_reader(data, size, &plain_size);

    int fd = memfd_create("fuzz_stream", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return 0;
        }
        done += (size_t)n;
    }
    uint64_t produced = 0;
    enum err rc = stream_decrypt_fd(fd, fuzz_key, (const uint8_t *)fuzz_identity,
                                    strlen(fuzz_identity), fuzz_count_sink, &produced);
    close(fd);
    /* Both paths must agree on whether the whole stream authenticates. */
    if ((rc == ERR_OK) != (all_opened == 1) || (rc == ERR_OK && produced != plain_size))
        abort();
    return 0;
}

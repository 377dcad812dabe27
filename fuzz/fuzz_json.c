/*
 * Fuzz target for JSON request bodies: the input is an untrusted body as a
 * handler would receive it (login, token, label, policy, role binding ...).
 * It goes through http_json_body_parse, the one parser the server uses for
 * every JSON route; an accepted body must be an object that survives a
 * round trip through the serializer used for responses (util/json_text,
 * which must write the same text as json_dumps), and the typed
 * field look-ups the handlers do must be safe on whatever it holds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/validate.h"
#include "util/json_text.h"

/* Reads fields the way handlers do, whatever their JSON types. */
static void fuzz_fields(json_t *body)
{
    static const char *const names[] = {
        "user",  "password", "otp",       "sensitivity", "tags", "untag",  "name",    "expires",
        "roles", "policy",   "principal", "scope",       "as",   "action", "resource"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *v = json_object_get(body, names[i]);
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            if (s == NULL || strlen(s) > json_string_length(v))
                abort();
        } else if (json_is_array(v)) {
            size_t idx;
            json_t *e;
            json_array_foreach(v, idx, e)
            {
                (void)json_string_value(e);
            }
        } else if (json_is_object(v)) {
            const char *k;
            json_t *e;
            json_object_foreach(v, k, e)
            {
                (void)json_string_value(e);
            }
        }
    }
    const char *user = NULL, *password = NULL;
    json_error_t jerr;
    (void)json_unpack_ex(body, &jerr, 0, "{s:s, s:s}", "user", &user, "password", &password);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 20))
        return 0;
    json_t *body = NULL;
    char why[HTTP_ERRMSG_MAX];
    enum err e = http_json_body_parse((const char *)data, size, &body, why, sizeof(why));
    if (e != ERR_OK) {
        if (body != NULL || why[0] == '\0')
            abort();
        return 0;
    }
    if (!json_is_object(body))
        abort();
    if (size > 0 && memchr(data, '\0', size) != NULL)
        abort(); /* NUL bytes are never accepted */
    fuzz_fields(body);
    /* The response serializer writes exactly what jansson would. */
    size_t len = 0;
    char *text = json_text(body, &len);
    char *want = json_dumps(body, JSON_COMPACT);
    if (text == NULL || want == NULL || strcmp(text, want) != 0 || len != strlen(text))
        abort();
    free(want);
    json_t *again = NULL;
    if (http_json_body_parse(text, strlen(text), &again, why, sizeof(why)) != ERR_OK ||
        !json_equal(body, again))
        abort();
    json_decref(again);
    free(text);
    json_decref(body);
    return 0;
}

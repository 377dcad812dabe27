/*
 * The route table. Order matters only where prefixes overlap: the more
 * specific route comes first.
 */
#include "api/api.h"

const struct route api_routes[] = {
    {"GET", "/v1/health", 1, BODY_NONE, 0, NULL, NULL, api_health, NULL},
    {"POST", "/v1/auth/login", 1, BODY_JSON, 0, NULL, NULL, api_login, NULL},
    {"POST", "/v1/auth/logout", 1, BODY_NONE, 1, NULL, NULL, api_logout, NULL},
    {"GET", "/v1/auth/whoami", 1, BODY_NONE, 1, NULL, NULL, api_whoami, NULL},
    {"GET", "/v1/users", 1, BODY_NONE, 1, NULL, NULL, api_user_list, NULL},
    {"POST", "/v1/users", 1, BODY_JSON, 1, NULL, NULL, api_user_add, NULL},
    {"POST", "/v1/users/", 0, BODY_NONE, 1, NULL, NULL, api_user_disable, NULL},
    {"PUT", "/v1/users/", 0, BODY_JSON, 1, NULL, NULL, api_user_passwd, NULL},
    {"GET", "/v1/users/", 0, BODY_NONE, 1, NULL, NULL, api_user_show, NULL},
    {"PUT", "/v1/objects/", 0, BODY_STREAM, 1, api_push_start, api_push_data, api_push_finish,
     api_push_cleanup},
    {"GET", "/v1/objects/", 0, BODY_NONE, 1, NULL, NULL, api_pull, NULL},
    {"DELETE", "/v1/objects/", 0, BODY_NONE, 1, NULL, NULL, api_remove, NULL},
    {"GET", "/v1/artifacts/", 0, BODY_NONE, 1, NULL, NULL, api_show, NULL},
    {"PATCH", "/v1/artifacts/", 0, BODY_JSON, 1, NULL, NULL, api_label, NULL},
    {"GET", "/v1/versions/", 0, BODY_NONE, 1, NULL, NULL, api_versions, NULL},
    {"GET", "/v1/list", 1, BODY_NONE, 1, NULL, NULL, api_list, NULL},
    {"GET", "/v1/policies", 1, BODY_NONE, 1, NULL, NULL, api_policy_list, NULL},
    {"GET", "/v1/policies/", 0, BODY_NONE, 1, NULL, NULL, api_policy_show, NULL},
    {"PUT", "/v1/policies/", 0, BODY_JSON, 1, NULL, NULL, api_policy_put, NULL},
    {"DELETE", "/v1/policies/", 0, BODY_NONE, 1, NULL, NULL, api_policy_delete, NULL},
    {"GET", "/v1/roles", 1, BODY_NONE, 1, NULL, NULL, api_role_list, NULL},
    {"POST", "/v1/roles", 1, BODY_JSON, 1, NULL, NULL, api_role_create, NULL},
    {"GET", "/v1/roles/", 0, BODY_NONE, 1, NULL, NULL, api_role_show, NULL},
    {"POST", "/v1/roles/", 0, BODY_JSON, 1, NULL, NULL, api_role_bind, NULL},
    {"DELETE", "/v1/roles/", 0, BODY_NONE, 1, NULL, NULL, api_role_unbind, NULL},
    {"GET", "/v1/groups", 1, BODY_NONE, 1, NULL, NULL, api_group_list, NULL},
    {"POST", "/v1/groups", 1, BODY_JSON, 1, NULL, NULL, api_group_add, NULL},
    {"POST", "/v1/groups/", 0, BODY_JSON, 1, NULL, NULL, api_group_member_add, NULL},
    {"DELETE", "/v1/groups/", 0, BODY_NONE, 1, NULL, NULL, api_group_member_remove, NULL},
    {"POST", "/v1/explain", 1, BODY_JSON, 1, NULL, NULL, api_explain, NULL},
    {NULL, NULL, 0, BODY_NONE, 0, NULL, NULL, NULL, NULL},
};

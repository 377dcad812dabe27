/*
 * access: storage of access policies, roles, role bindings and groups in
 * the metadata store. The policy engine never reads these tables itself:
 * the server loads them (meta_access_load) and compiles a snapshot.
 */
#ifndef COFFER_META_ACCESS_H
#define COFFER_META_ACCESS_H

#include <jansson.h>

#include "meta/meta.h"

/* Inserts or replaces a policy document (already validated). *created is set
 * to 1 when the policy is new. */
enum err meta_policy_put(struct meta *m, const char *name, const char *doc, int global,
                         const char *by, int *created);
/* {name, global, builtin, document, roles[], updated_at, updated_by}. ERR_NOT_FOUND if absent. */
enum err meta_policy_get(struct meta *m, const char *name, json_t **out);
/* [{name, global, builtin, roles[]}] */
enum err meta_policy_list(struct meta *m, json_t **out);
/* ERR_CONFLICT when a role still uses it. */
enum err meta_policy_delete(struct meta *m, const char *name);

/* ERR_CONFLICT if the role exists. */
enum err meta_role_create(struct meta *m, const char *name, int builtin);
enum err meta_role_attach(struct meta *m, const char *role, const char *policy);
/* [{name, builtin, policies[], bindings}] */
enum err meta_role_list(struct meta *m, json_t **out);
/* {name, builtin, policies[{name, global, document}], bindings[{principal, scope, created_by}]} */
enum err meta_role_get(struct meta *m, const char *name, json_t **out);
enum err meta_binding_add(struct meta *m, const char *role, const char *principal,
                          const char *scope, const char *by);
/* scope NULL removes every binding of role to principal. ERR_NOT_FOUND if none. */
enum err meta_binding_remove(struct meta *m, const char *role, const char *principal,
                             const char *scope);

enum err meta_group_create(struct meta *m, const char *name);
enum err meta_group_add_member(struct meta *m, const char *group, const char *principal);
enum err meta_group_remove_member(struct meta *m, const char *group, const char *principal);
/* [{name, members[]}] */
enum err meta_group_list(struct meta *m, json_t **out);
/* Names of the groups principal ("user:alice") belongs to, as a JSON array. */
enum err meta_principal_groups(struct meta *m, const char *principal, json_t **out);

/* Everything a snapshot is compiled from:
 * {"roles": {ROLE: [POLICY...]}, "policies": {NAME: {"document": TEXT, "global": bool}},
 *  "bindings": [[ROLE, PRINCIPAL, SCOPE]]} */
enum err meta_access_load(struct meta *m, json_t **out);

/* Marks a policy as shipped with Coffer (shown in listings; still editable). */
enum err meta_policy_mark_builtin(struct meta *m, const char *name);

/* Key/value settings (e.g. markers of one-time set-up steps). */
enum err meta_setting_get(struct meta *m, const char *key, char *out, size_t cap);
enum err meta_setting_set(struct meta *m, const char *key, const char *value);

#endif

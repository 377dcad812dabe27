/*
 * api: the HTTP handlers, one file per resource. Each is listed in the
 * route table (api/routes.c) with the body it takes and whether it needs
 * an authenticated caller.
 */
#ifndef COFFER_API_API_H
#define COFFER_API_API_H

#include "http/http.h"

/* health.c, auth.c */
enum err api_health(struct request *r);
enum err api_login(struct request *r);
enum err api_logout(struct request *r);
enum err api_whoami(struct request *r);
enum err api_login_mfa(struct request *r);

/* mfa_api.c: the caller's own TOTP enrolment */
enum err api_mfa_status(struct request *r);
enum err api_mfa_enroll(struct request *r);
enum err api_mfa_confirm(struct request *r);
enum err api_mfa_disable(struct request *r);
enum err api_mfa_reset(struct request *r); /* admin:Users */

/* tokens_api.c: API tokens of service accounts */
enum err api_token_create(struct request *r);
enum err api_token_list(struct request *r);
enum err api_token_revoke(struct request *r);
/* Client-certificate bindings of service accounts (svccert_api.c). */
enum err api_svccert_create(struct request *r);
enum err api_svccert_list(struct request *r);
enum err api_svccert_revoke(struct request *r);

/* oidc_api.c: trusted OIDC issuers (admin:Users) */
enum err api_oidc_list(struct request *r);
enum err api_oidc_put(struct request *r);
enum err api_oidc_delete(struct request *r);

/* users.c */
enum err api_user_list(struct request *r);
enum err api_user_add(struct request *r);
enum err api_user_show(struct request *r);
enum err api_user_disable(struct request *r);
enum err api_user_passwd(struct request *r);

/* artifacts.c */
enum err api_push_start(struct request *r);
enum err api_push_data(struct request *r, const uint8_t *buf, size_t len);
enum err api_push_finish(struct request *r);
void api_push_cleanup(struct request *r);
enum err api_pull(struct request *r);
enum err api_show(struct request *r);
enum err api_versions(struct request *r);
enum err api_list(struct request *r);
enum err api_label(struct request *r);
enum err api_remove(struct request *r);
/* Streams the content of v (resolved and authorised by the caller) as the
 * response and records the download with detail (borrowed, may be NULL).
 * v stays owned by the caller. */
struct meta_version;
enum err api_serve_version(struct request *r, const struct meta_version *v, json_t *detail);

/* share_api.c: share links (artifact:Share) and their unauthenticated use */
enum err api_share_create(struct request *r);
enum err api_share_list(struct request *r);
enum err api_share_revoke(struct request *r);
enum err api_shared_get(struct request *r); /* GET /v1/shared/TOKEN[/meta] */

/* promote_api.c: promotion between environments */
enum err api_promote(struct request *r);
enum err api_promotion_list(struct request *r);
enum err api_promotion_decide(struct request *r); /* POST /v1/promotions/ID/approve|reject */
/* Applies the settings of environment env (app/environments.h) to action
 * (artifact:Write, artifact:Promote or artifact:Approve) on resource: direct
 * pushes (Write only), MFA, source networks. Records the refusal and returns
 * ERR_FORBIDDEN (with a message) when refused. */
enum err api_env_check_write(struct request *r, const char *env, const char *resource,
                             const char *action);

/* access_api.c */
enum err api_policy_list(struct request *r);
enum err api_policy_show(struct request *r);
enum err api_policy_put(struct request *r);
enum err api_policy_delete(struct request *r);
enum err api_role_list(struct request *r);
enum err api_role_show(struct request *r);
enum err api_role_create(struct request *r);
enum err api_role_bind(struct request *r);
enum err api_role_unbind(struct request *r);
enum err api_group_list(struct request *r);
enum err api_group_add(struct request *r);
enum err api_group_member_add(struct request *r);
enum err api_group_member_remove(struct request *r);
enum err api_explain(struct request *r);

/* keys_api.c (admin:Keys) */
enum err api_keys_status(struct request *r);
enum err api_keys_rotate(struct request *r);
enum err api_keys_period(struct request *r);
enum err api_keys_reencrypt(struct request *r);

/* compliance_api.c: erase (artifact:Erase), holds, locks, retention (artifact:Hold) */
enum err api_erase(struct request *r);
enum err api_legal_hold_list(struct request *r);
enum err api_legal_hold_set(struct request *r);
enum err api_legal_hold_clear(struct request *r);
enum err api_lock_set(struct request *r);
enum err api_lock_clear(struct request *r);
enum err api_retention_list(struct request *r);
enum err api_retention_add(struct request *r);
enum err api_retention_delete(struct request *r);
enum err api_retention_run(struct request *r);

/* audit_api.c (all need audit:Read) */
enum err api_audit_events(struct request *r);
enum err api_audit_head(struct request *r);
enum err api_audit_proof(struct request *r);
enum err api_audit_consistency(struct request *r);
enum err api_audit_verify(struct request *r);

/* monitor_api.c: metrics, anomaly findings, holds */
enum err api_metrics(struct request *r);
enum err api_alerts_list(struct request *r);
enum err api_alert_ack(struct request *r);
enum err api_holds_list(struct request *r);
enum err api_hold_clear(struct request *r);
enum err api_review(struct request *r);
enum err api_review_certify(struct request *r);
enum err api_doctor(struct request *r);

/* service_roles.c: role bindings of service:NAME for tokens and certificates */
/* Binds roles to service:NAME (scope "" for none) and recompiles the policy
 * snapshot; on failure removes what it added and sets the error. */
enum err api_service_bind(struct request *r, const char *name, json_t *roles, const char *scope);
/* Removes those bindings again and recompiles (logs when that fails). */
void api_service_unbind(struct request *r, const char *name, json_t *roles, const char *scope);
/* Checks a roles list: 1..APITOKEN_MAX_ROLES names of existing roles. */
enum err api_service_check_roles(struct request *r, json_t *roles);
/* Records an allowed change (op) of the credential id of service:NAME under
 * action, with detail {"op": op, id_key: id}. Returns as api_record. */
enum err api_service_record(struct request *r, const char *action, const char *name, const char *op,
                            const char *id_key, int64_t id, const char *reason);

#endif

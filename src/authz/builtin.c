/*
 * authz builtin: the built-in roles and global guardrails, embedded as C
 * strings so the server works from any directory. Each string is
 * byte-for-byte identical to its file in policies/builtin/ (a unit test
 * compares them); edit both together. docs/POLICY.md explains every grant.
 */
#include "authz/authz_int.h"

#include <string.h>

static const char builtin_viewer[] = "{\n"
                                     "  \"Version\": \"2012-10-17\",\n"
                                     "  \"Id\": \"builtin-viewer\",\n"
                                     "  \"Statement\": [\n"
                                     "    {\n"
                                     "      \"Sid\": \"ListArtifacts\",\n"
                                     "      \"Effect\": \"Allow\",\n"
                                     "      \"Action\": \"artifact:List\",\n"
                                     "      \"Resource\": \"*\"\n"
                                     "    },\n"
                                     "    {\n"
                                     "      \"Sid\": \"ReadMetadata\",\n"
                                     "      \"Effect\": \"Allow\",\n"
                                     "      \"Action\": \"artifact:Read\",\n"
                                     "      \"Resource\": \"*\"\n"
                                     "    }\n"
                                     "  ]\n"
                                     "}\n";

static const char builtin_data_scientist[] =
    "{\n"
    "  \"Version\": \"2012-10-17\",\n"
    "  \"Id\": \"builtin-data-scientist\",\n"
    "  \"Statement\": [\n"
    "    {\n"
    "      \"Sid\": \"ListAndReadMetadata\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": [\"artifact:List\", \"artifact:Read\"],\n"
    "      \"Resource\": \"*\"\n"
    "    },\n"
    "    {\n"
    "      \"Sid\": \"DownloadContent\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": \"artifact:Download\",\n"
    "      \"Resource\": \"*\"\n"
    "    },\n"
    "    {\n"
    "      \"Sid\": \"WriteInDev\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": \"artifact:Write\",\n"
    "      \"Resource\": \"*/dev/*\"\n"
    "    },\n"
    "    {\n"
    "      \"Sid\": \"ShareInDev\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": \"artifact:Share\",\n"
    "      \"Resource\": \"*/dev/*\"\n"
    "    }\n"
    "  ]\n"
    "}\n";

static const char builtin_ml_engineer[] =
    "{\n"
    "  \"Version\": \"2012-10-17\",\n"
    "  \"Id\": \"builtin-ml-engineer\",\n"
    "  \"Statement\": [\n"
    "    {\n"
    "      \"Sid\": \"ListAndReadMetadata\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": [\"artifact:List\", \"artifact:Read\"],\n"
    "      \"Resource\": \"*\"\n"
    "    },\n"
    "    {\n"
    "      \"Sid\": \"DownloadAllButTrainingData\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": \"artifact:Download\",\n"
    "      \"Resource\": \"*\",\n"
    "      \"Condition\": {\n"
    "        \"StringEquals\": {\n"
    "          \"coffer:ResourceKind\": [\"model\", \"features\", \"params\", \"metrics\", "
    "\"code\", \"other\"]\n"
    "        }\n"
    "      }\n"
    "    },\n"
    "    {\n"
    "      \"Sid\": \"WriteAllButTrainingDataInDevAndStaging\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": \"artifact:Write\",\n"
    "      \"Resource\": [\"*/dev/*\", \"*/staging/*\"],\n"
    "      \"Condition\": {\n"
    "        \"StringEquals\": {\n"
    "          \"coffer:ResourceKind\": [\"model\", \"features\", \"params\", \"metrics\", "
    "\"code\", \"other\"]\n"
    "        }\n"
    "      }\n"
    "    },\n"
    "    {\n"
    "      \"Sid\": \"RequestPromotion\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": \"artifact:Promote\",\n"
    "      \"Resource\": \"*\"\n"
    "    }\n"
    "  ]\n"
    "}\n";

static const char builtin_deployer[] =
    "{\n"
    "  \"Version\": \"2012-10-17\",\n"
    "  \"Id\": \"builtin-deployer\",\n"
    "  \"Statement\": [\n"
    "    {\n"
    "      \"Sid\": \"ListAndReadProd\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": [\"artifact:List\", \"artifact:Read\"],\n"
    "      \"Resource\": \"*/prod/*\"\n"
    "    },\n"
    "    {\n"
    "      \"Sid\": \"DownloadProdModels\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": \"artifact:Download\",\n"
    "      \"Resource\": \"*/prod/*\",\n"
    "      \"Condition\": {\n"
    "        \"StringEquals\": {\"coffer:ResourceKind\": \"model\"}\n"
    "      }\n"
    "    },\n"
    "    {\n"
    "      \"Sid\": \"PromoteIntoProd\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": [\"artifact:Promote\", \"artifact:Approve\"],\n"
    "      \"Resource\": \"*/prod/*\"\n"
    "    }\n"
    "  ]\n"
    "}\n";

static const char builtin_auditor[] = "{\n"
                                      "  \"Version\": \"2012-10-17\",\n"
                                      "  \"Id\": \"builtin-auditor\",\n"
                                      "  \"Statement\": [\n"
                                      "    {\n"
                                      "      \"Sid\": \"ReadAuditTrail\",\n"
                                      "      \"Effect\": \"Allow\",\n"
                                      "      \"Action\": \"audit:Read\",\n"
                                      "      \"Resource\": \"*\"\n"
                                      "    },\n"
                                      "    {\n"
                                      "      \"Sid\": \"ListAndReadMetadata\",\n"
                                      "      \"Effect\": \"Allow\",\n"
                                      "      \"Action\": [\"artifact:List\", \"artifact:Read\"],\n"
                                      "      \"Resource\": \"*\"\n"
                                      "    }\n"
                                      "  ]\n"
                                      "}\n";

static const char builtin_security_admin[] =
    "{\n"
    "  \"Version\": \"2012-10-17\",\n"
    "  \"Id\": \"builtin-security-admin\",\n"
    "  \"Statement\": [\n"
    "    {\n"
    "      \"Sid\": \"ManageIdentitiesPoliciesAndKeys\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": [\"admin:Users\", \"admin:Policies\", \"admin:Keys\"],\n"
    "      \"Resource\": \"*\"\n"
    "    },\n"
    "    {\n"
    "      \"Sid\": \"ReadAuditTrail\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": \"audit:Read\",\n"
    "      \"Resource\": \"*\"\n"
    "    },\n"
    "    {\n"
    "      \"Sid\": \"ListArtifacts\",\n"
    "      \"Effect\": \"Allow\",\n"
    "      \"Action\": \"artifact:List\",\n"
    "      \"Resource\": \"*\"\n"
    "    }\n"
    "  ]\n"
    "}\n";

static const char builtin_admin[] = "{\n"
                                    "  \"Version\": \"2012-10-17\",\n"
                                    "  \"Id\": \"builtin-admin\",\n"
                                    "  \"Statement\": [\n"
                                    "    {\n"
                                    "      \"Sid\": \"Everything\",\n"
                                    "      \"Effect\": \"Allow\",\n"
                                    "      \"Action\": \"*\",\n"
                                    "      \"Resource\": \"*\"\n"
                                    "    }\n"
                                    "  ]\n"
                                    "}\n";

static const char builtin_global_prod_changes_need_mfa[] =
    "{\n"
    "  \"Version\": \"2012-10-17\",\n"
    "  \"Id\": \"builtin-guardrail-prod-changes-need-mfa\",\n"
    "  \"Statement\": [\n"
    "    {\n"
    "      \"Sid\": \"DenyProdWritesAndPromotionsWithoutMfa\",\n"
    "      \"Effect\": \"Deny\",\n"
    "      \"Principal\": \"*\",\n"
    "      \"Action\": [\"artifact:Write\", \"artifact:Promote\", \"artifact:Approve\"],\n"
    "      \"Resource\": \"*/prod/*\",\n"
    "      \"Condition\": {\n"
    "        \"BoolIfExists\": {\"coffer:MultiFactorAuthPresent\": \"false\"}\n"
    "      }\n"
    "    }\n"
    "  ]\n"
    "}\n";

static const char builtin_global_restricted_not_shareable[] =
    "{\n"
    "  \"Version\": \"2012-10-17\",\n"
    "  \"Id\": \"builtin-guardrail-restricted-not-shareable\",\n"
    "  \"Statement\": [\n"
    "    {\n"
    "      \"Sid\": \"DenySharingRestrictedVersions\",\n"
    "      \"Effect\": \"Deny\",\n"
    "      \"Principal\": \"*\",\n"
    "      \"Action\": \"artifact:Share\",\n"
    "      \"Resource\": \"*\",\n"
    "      \"Condition\": {\n"
    "        \"NumericGreaterThanEquals\": {\"coffer:ResourceSensitivityLevel\": \"3\"}\n"
    "      }\n"
    "    }\n"
    "  ]\n"
    "}\n";

static const char builtin_global_restricted_downloads_need_mfa[] =
    "{\n"
    "  \"Version\": \"2012-10-17\",\n"
    "  \"Id\": \"builtin-guardrail-restricted-downloads-need-mfa\",\n"
    "  \"Statement\": [\n"
    "    {\n"
    "      \"Sid\": \"DenyRestrictedDownloadsWithoutMfa\",\n"
    "      \"Effect\": \"Deny\",\n"
    "      \"Principal\": \"*\",\n"
    "      \"Action\": \"artifact:Download\",\n"
    "      \"Resource\": \"*\",\n"
    "      \"Condition\": {\n"
    "        \"StringEquals\": {\"coffer:ResourceSensitivity\": \"restricted\"},\n"
    "        \"BoolIfExists\": {\"coffer:MultiFactorAuthPresent\": \"false\"}\n"
    "      }\n"
    "    }\n"
    "  ]\n"
    "}\n";

static const char builtin_global_erase_needs_mfa[] =
    "{\n"
    "  \"Version\": \"2012-10-17\",\n"
    "  \"Id\": \"builtin-guardrail-erase-needs-mfa\",\n"
    "  \"Statement\": [\n"
    "    {\n"
    "      \"Sid\": \"DenyEraseWithoutMfa\",\n"
    "      \"Effect\": \"Deny\",\n"
    "      \"Principal\": \"*\",\n"
    "      \"Action\": \"artifact:Erase\",\n"
    "      \"Resource\": \"*\",\n"
    "      \"Condition\": {\n"
    "        \"BoolIfExists\": {\"coffer:MultiFactorAuthPresent\": \"false\"}\n"
    "      }\n"
    "    }\n"
    "  ]\n"
    "}\n";

static const struct authz_builtin builtins[] = {
    {"viewer", false, "viewer.json", builtin_viewer},
    {"data-scientist", false, "data-scientist.json", builtin_data_scientist},
    {"ml-engineer", false, "ml-engineer.json", builtin_ml_engineer},
    {"deployer", false, "deployer.json", builtin_deployer},
    {"auditor", false, "auditor.json", builtin_auditor},
    {"security-admin", false, "security-admin.json", builtin_security_admin},
    {"admin", false, "admin.json", builtin_admin},
    {"prod-changes-need-mfa", true, "global-prod-changes-need-mfa.json",
     builtin_global_prod_changes_need_mfa},
    {"restricted-downloads-need-mfa", true, "global-restricted-downloads-need-mfa.json",
     builtin_global_restricted_downloads_need_mfa},
    {"restricted-not-shareable", true, "global-restricted-not-shareable.json",
     builtin_global_restricted_not_shareable},
    {"erase-needs-mfa", true, "global-erase-needs-mfa.json", builtin_global_erase_needs_mfa},
};

const struct authz_builtin *authz_builtins(size_t *n)
{
    *n = sizeof(builtins) / sizeof(builtins[0]);
    return builtins;
}

enum err authz_builder_add_builtins(struct authz_builder *b, char *err, size_t cap)
{
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        const struct authz_builtin *bi = &builtins[i];
        enum err e =
            bi->global
                ? authz_builder_add_global(b, bi->name, bi->json, strlen(bi->json), err, cap)
                : authz_builder_attach(b, bi->name, bi->name, bi->json, strlen(bi->json), err, cap);
        if (e != ERR_OK)
            return e;
    }
    return ERR_OK;
}

#!/usr/bin/env bash
# End-to-end test of access control through a real server: a small
# organisation (users, groups, built-in and custom roles, scoped bindings, a
# global Deny, two projects, three environments, four sensitivities, several
# kinds) and a matrix of who may do what, every cell checked with the real CLI
# (show, pull, push, label, rm) and cross-checked with `coffer policy
# explain`. Also: exact listing sets, existence hiding (a forbidden artifact
# answers exactly like a missing one), per-version grants, scope narrowing,
# the clearance rule over policies, label vs declassify, the MFA guardrails,
# unbinding and group removal taking effect at once, and policy validation
# errors that name the statement and the element.
. "$(dirname "$0")/lib.sh" || {
    echo "0 passed, 1 failed"
    exit 1
}
e2e_init policy_matrix

if ! command -v oathtool >/dev/null 2>&1; then
    fail "oathtool is installed (Debian package oathtool)"
    e2e_finish
fi

ADMIN_PW='Adm1n-Matrix-Password-long!'
DATA="$E2E_ROOT/data"
FILES=$(e2e_tmpdir files)
POL=$(e2e_tmpdir policies)

# as USER CMD...: runs CMD with USER's stored login (its own XDG_CONFIG_HOME).
as() {
    local u="$1"
    shift
    (
        export XDG_CONFIG_HOME="$E2E_ROOT/config-$u"
        "$@"
    )
}

# Password of a test user (each user logs in exactly once).
pw_of() { printf '%s-Matrix-Pw-2024!' "$1"; }

# ls_set USER [PREFIX]: the sorted, space-separated paths USER may list.
ls_set() {
    local u="$1"
    shift
    as "$u" coffer ls --json "$@" 2>/dev/null | grep -oE '"path": *"[^"]*"' |
        sed -E 's/^"path": *"//; s/"$//' | sort | tr '\n' ' ' | sed 's/ $//'
}

# explain AS ACTION RESOURCE [OPTIONS...]: prints the one-line decision
# (asked by the admin).
explain() {
    local who="$1" action="$2" resource="$3"
    shift 3
    as admin coffer policy explain --as "user:$who" --action "$action" --resource "$resource" \
        "$@" 2>&1
}

# explain_effect AS ACTION RESOURCE: "allow" or "deny" (or "error").
explain_effect() {
    local line
    line=$(explain "$@")
    case "$line" in
    allow\ *) echo allow ;;
    deny\ *) echo deny ;;
    *) echo error ;;
    esac
}

# ==========================================================================
log "setup: server, users, groups, roles, bindings, global deny"
run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
ok "server starts"
use_config admin
expect_ok login_cli admin "$ADMIN_PW" || {
    e2e_finish
}

# user NAME [OPTIONS...]: creates a user with its password on stdin.
add_user() {
    local name="$1"
    shift
    pw_of "$name" | as admin coffer user add "$name" "$@" --password-stdin >/dev/null 2>"$E2E_ROOT/useradd.err"
    local rc=$?
    if [ "$rc" -eq 0 ]; then
        ok "user add $name $*"
    else
        fail "user add $name $* (exit $rc: $(cat "$E2E_ROOT/useradd.err"))"
    fi
}
add_user alice --clearance confidential --attr team=fraud
add_user bob --clearance internal --attr team=fraud
add_user carol --clearance restricted
add_user dave
add_user erin --clearance confidential
add_user frank
add_user grace --clearance internal --attr team=churn
add_user heidi --clearance internal
USERS="alice bob carol dave erin frank grace heidi"

expect_ok as admin coffer group add mle
expect_ok as admin coffer group add contractors
expect_ok as admin coffer group member add mle user:bob
expect_ok as admin coffer group member add contractors user:bob

# A custom role from a policy with conditions and principal-tag variables:
# a team sees and downloads the models of its own project, nothing else.
cat >"$POL/team-models.json" <<'EOF'
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ListOwnTeamModels",
      "Effect": "Allow",
      "Action": "artifact:List",
      "Resource": "${coffer:PrincipalTag/team}/*",
      "Condition": {"StringEquals": {"coffer:ResourceKind": "model"}}
    },
    {
      "Sid": "ReadOwnTeamModels",
      "Effect": "Allow",
      "Action": ["artifact:Read", "artifact:Download"],
      "Resource": "*",
      "Condition": {
        "StringEquals": {
          "coffer:ResourceKind": "model",
          "coffer:Project": "${coffer:PrincipalTag/team}"
        }
      }
    }
  ]
}
EOF
# Label (tags, raising sensitivity) without Declassify.
cat >"$POL/tagger.json" <<'EOF'
{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "TagAndRaise", "Effect": "Allow", "Action": "artifact:Label", "Resource": "*"}
  ]
}
EOF
# A grant of one frozen version.
cat >"$POL/x-v1.json" <<'EOF'
{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "SeeX", "Effect": "Allow", "Action": "artifact:List", "Resource": "fraud/dev/x"},
    {"Sid": "OnlyVersionOne", "Effect": "Allow",
     "Action": ["artifact:Read", "artifact:Download"], "Resource": "fraud/dev/x@1"}
  ]
}
EOF
# Global guardrail: contractors never take content out of churn, nor write it.
cat >"$POL/contractors.json" <<'EOF'
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ContractorsNeverTakeChurnContent",
      "Effect": "Deny",
      "Principal": {"Coffer": ["group:contractors"]},
      "Action": ["artifact:Download", "artifact:Write"],
      "Resource": "churn/*"
    }
  ]
}
EOF
expect_ok as admin coffer role create team-models --policy "$POL/team-models.json"
expect_ok as admin coffer role create tagger --policy "$POL/tagger.json"
expect_ok as admin coffer role create x-v1 --policy "$POL/x-v1.json"
expect_ok as admin coffer policy put contractors-no-churn "$POL/contractors.json" --global

expect_ok as admin coffer role bind data-scientist user:alice --scope 'fraud/*'
expect_ok as admin coffer role bind tagger user:alice --scope 'fraud/dev/*'
expect_ok as admin coffer role bind ml-engineer group:mle
expect_ok as admin coffer role bind viewer user:carol
expect_ok as admin coffer role bind auditor user:dave
expect_ok as admin coffer role bind deployer user:erin
expect_ok as admin coffer role bind team-models user:grace
expect_ok as admin coffer role bind team-models user:heidi

expect_ok as admin coffer role show team-models
assert_contains "$(cat "$LAST_OUT")" "user:grace" "role show lists the binding of grace"
expect_exit 6 as admin coffer role bind viewer user:carol
expect_exit 5 as admin coffer role bind viewer user:nobody
expect_exit 5 as admin coffer role bind no-such-role user:carol

# ==========================================================================
log "setup: artifacts (prod ones from a second admin session with MFA)"
printf 'scorer v1\n' >"$FILES/scorer1"
printf 'scorer v2\n' >"$FILES/scorer2"
printf 'x version one\n' >"$FILES/x1"
printf 'x version two\n' >"$FILES/x2"
printf 'payload\n' >"$FILES/payload"
head -c 4096 /dev/urandom >"$FILES/blob"

expect_exit 4 as admin coffer push "$FILES/blob" fraud/prod/scorer --kind model
assert_contains "$(tr '[:upper:]' '[:lower:]' <"$LAST_ERR")" "mfa" \
    "without MFA even the admin cannot write into prod (the error says why)"
# The session in config "admin" predates the enrolment, so it stays without
# MFA; the one in "admin-mfa" confirms the enrolment and carries MFA.
use_config admin-mfa
expect_ok login_cli admin "$ADMIN_PW"
use_config admin
expect_ok as admin-mfa coffer mfa enroll --json
MFA_SECRET=$(json_field secret "$LAST_OUT")
assert_ne "$MFA_SECRET" "" "mfa enroll gives a secret"
expect_ok as admin-mfa coffer mfa confirm "$(oathtool --totp -b "$MFA_SECRET")"
expect_ok as admin-mfa coffer whoami --json
assert_eq "$(json_field mfa "$LAST_OUT")" true "the admin-mfa session has MFA"
expect_ok as admin coffer whoami --json
assert_eq "$(json_field mfa "$LAST_OUT")" false "the older admin session has no MFA"

push_admin() { expect_ok as admin coffer push "$@"; }
push_admin "$FILES/scorer1" fraud/dev/scorer --kind model --sensitivity internal
push_admin "$FILES/scorer2" fraud/dev/scorer
push_admin "$FILES/blob" fraud/dev/train --kind dataset --sensitivity confidential
push_admin "$FILES/blob" fraud/dev/eval --kind metrics --sensitivity public
push_admin "$FILES/x1" fraud/dev/x --kind model --sensitivity public
push_admin "$FILES/x2" fraud/dev/x
push_admin "$FILES/blob" fraud/staging/scorer --kind model --sensitivity internal
push_admin "$FILES/blob" churn/dev/model --kind model --sensitivity public
push_admin "$FILES/blob" churn/dev/data --kind dataset --sensitivity internal --tag pii=true
expect_ok as admin-mfa coffer push "$FILES/blob" fraud/prod/scorer --kind model --sensitivity confidential
expect_ok as admin-mfa coffer push "$FILES/blob" fraud/prod/train --kind dataset --sensitivity restricted
expect_ok as admin-mfa coffer push "$FILES/blob" churn/prod/model --kind model --sensitivity internal

# ==========================================================================
log "logins (once per user)"
for u in $USERS; do
    use_config "$u"
    expect_ok login_cli "$u" "$(pw_of "$u")"
done
use_config admin
expect_ok as bob coffer whoami
assert_contains "$(cat "$LAST_OUT")" "user:bob" "bob's login is bob's"

# ==========================================================================
log "existence hiding: a forbidden artifact answers exactly like a missing one"
# Each user below may not read churn/staging/secret (confidential model), for
# a different reason: frank has no binding, alice is scoped to fraud/*, erin's
# role covers prod only, bob, dave and grace lack the clearance (grace's role
# would allow it), heidi has no team attribute for her role's variable. The
# answers before and after it exists must be identical, byte for byte.
SECRET=churn/staging/secret
HIDERS="frank alice erin bob dave grace heidi"
hide_ops() {
    # name|command...
    printf '%s\n' \
        "show|coffer show $SECRET" \
        "show@1|coffer show $SECRET@1" \
        "pull|coffer pull $SECRET -o $FILES/hidden.out" \
        "pull@1|coffer pull $SECRET@1 -o $FILES/hidden.out" \
        "versions|coffer versions $SECRET" \
        "label|coffer label $SECRET --tag seen=yes" \
        "rm|coffer rm $SECRET@1" \
        "push-kind|coffer push $FILES/payload $SECRET --kind dataset" \
        "parent|coffer push $FILES/payload churn/dev/child --kind model --parent $SECRET@1"
}
declare -A HIDE_BEFORE
for u in $HIDERS carol; do
    while IFS='|' read -r name cmd; do
        # shellcheck disable=SC2086
        run_cmd as "$u" $cmd
        HIDE_BEFORE["$u/$name"]="$LAST_RC:$(cat "$LAST_ERR")"
    done < <(hide_ops)
done
push_admin "$FILES/blob" "$SECRET" --kind model --sensitivity confidential
for u in $HIDERS; do
    while IFS='|' read -r name cmd; do
        # shellcheck disable=SC2086
        run_cmd as "$u" $cmd
        after="$LAST_RC:$(cat "$LAST_ERR")"
        if [ "$after" = "${HIDE_BEFORE["$u/$name"]}" ]; then
            ok "hidden from $u: '$name' answers as for a missing artifact ($LAST_RC)"
        else
            fail "hidden from $u: '$name' reveals existence: before '${HIDE_BEFORE["$u/$name"]}'," \
                "after '$after'"
        fi
    done < <(hide_ops)
done
assert_eq "${HIDE_BEFORE["frank/pull"]%%:*}" 5 "pull of a missing artifact exits 5"
assert_contains "${HIDE_BEFORE["frank/pull"]}" "not found" "missing artifact message says not found"
assert_no_file "$FILES/hidden.out" "no file is written for a hidden or missing artifact"
# Control: carol (viewer, cleared for restricted) now sees it, so the
# difference above is really made by the access rules.
run_cmd as carol coffer show "$SECRET"
assert_eq "$LAST_RC" 0 "carol (viewer, restricted clearance) can show the secret once it exists"
assert_ne "$LAST_RC:$(cat "$LAST_ERR")" "${HIDE_BEFORE["carol/show"]}" \
    "for carol the answer changes when the artifact appears"
run_cmd as carol coffer pull "$SECRET" -o "$FILES/carol.out"
assert_eq "$LAST_RC" 4 "carol may see but not download: forbidden (4), not hidden"
assert_contains "$(cat "$LAST_ERR")" "artifact:Download" "the forbidden message names the action"
expect_ok as alice coffer ls "$SECRET"
assert_eq "$(cat "$LAST_OUT")" "" "listing the hidden path as a prefix shows nothing"

# ==========================================================================
log "listings show exactly the permitted, within-clearance artifacts"
ALL="churn/dev/data churn/dev/model churn/prod/model churn/staging/secret fraud/dev/eval"
ALL="$ALL fraud/dev/scorer fraud/dev/train fraud/dev/x fraud/prod/scorer fraud/prod/train"
ALL="$ALL fraud/staging/scorer"
INTERNAL_ALL="churn/dev/data churn/dev/model churn/prod/model fraud/dev/eval fraud/dev/scorer"
INTERNAL_ALL="$INTERNAL_ALL fraud/dev/x fraud/staging/scorer"
check_ls() {
    local u="$1" prefix="$2" want="$3"
    local got
    if [ -n "$prefix" ]; then
        got=$(ls_set "$u" "$prefix")
    else
        got=$(ls_set "$u")
    fi
    assert_eq "$got" "$want" "ls '${prefix}' as $u shows exactly: ${want:-(nothing)}"
}
check_ls admin "" "$ALL"
check_ls carol "" "$ALL"
check_ls alice "" "fraud/dev/eval fraud/dev/scorer fraud/dev/train fraud/dev/x fraud/prod/scorer fraud/staging/scorer"
check_ls bob "" "$INTERNAL_ALL"
check_ls dave "" "$INTERNAL_ALL"
check_ls erin "" "churn/prod/model fraud/prod/scorer"
check_ls frank "" ""
check_ls grace "" "churn/dev/model churn/prod/model"
check_ls heidi "" ""
check_ls alice churn/ ""
check_ls alice fraud/prod/ "fraud/prod/scorer"
check_ls bob fraud/ "fraud/dev/eval fraud/dev/scorer fraud/dev/x fraud/staging/scorer"
check_ls carol churn/ "churn/dev/data churn/dev/model churn/prod/model churn/staging/secret"
check_ls carol fraud/prod/ "fraud/prod/scorer fraud/prod/train"
check_ls dave fraud/prod/ ""
check_ls erin fraud/ "fraud/prod/scorer"
check_ls grace churn/dev/ "churn/dev/model"
expect_ok as frank coffer ls
assert_eq "$(cat "$LAST_OUT")" "" "an empty listing is a success with no output"
expect_ok as frank coffer ls fraud/
expect_exit 2 as frank coffer ls 'fraud/../x'

# ==========================================================================
log "the matrix: user x resource x {show, pull, push, label, rm}"
# Expected exit codes: 0 allowed, 4 forbidden (the artifact is visible),
# 5 hidden or missing, '-' not checked. Every cell is also predicted from
# `coffer policy explain` for the actions involved and must agree.
MATRIX=$(
    cat <<'EOF'
# user  resource              show pull push label rm
alice   fraud/dev/scorer       0    0    0    0    4
alice   fraud/dev/train        0    0    0    0    4
alice   fraud/staging/scorer   0    0    4    4    4
alice   fraud/prod/scorer      0    0    4    4    4
alice   fraud/prod/train       5    5    4    5    5
alice   churn/dev/model        5    5    4    5    5
alice   churn/dev/data         5    5    4    5    5
alice   churn/prod/model       5    5    4    5    5
alice   fraud/dev/ghost        5    5    -    5    5
alice   churn/prod/ghost       5    5    -    5    5
bob     fraud/dev/scorer       0    0    0    4    4
bob     fraud/dev/train        5    5    4    5    5
bob     fraud/staging/scorer   0    0    0    4    4
bob     fraud/prod/scorer      5    5    4    5    5
bob     fraud/prod/train       5    5    4    5    5
bob     churn/dev/model        0    4    4    4    4
bob     churn/dev/data         0    4    4    4    4
bob     churn/prod/model       0    4    4    4    4
bob     fraud/dev/ghost        5    5    -    5    5
bob     churn/prod/ghost       5    5    -    5    5
carol   fraud/dev/scorer       0    4    4    4    4
carol   fraud/dev/train        0    4    4    4    4
carol   fraud/staging/scorer   0    4    4    4    4
carol   fraud/prod/scorer      0    4    4    4    4
carol   fraud/prod/train       0    4    4    4    4
carol   churn/dev/model        0    4    4    4    4
carol   churn/dev/data         0    4    4    4    4
carol   churn/prod/model       0    4    4    4    4
carol   fraud/dev/ghost        5    5    -    5    5
carol   churn/prod/ghost       5    5    -    5    5
dave    fraud/dev/scorer       0    4    4    4    4
dave    fraud/dev/train        5    5    4    5    5
dave    fraud/staging/scorer   0    4    4    4    4
dave    fraud/prod/scorer      5    5    4    5    5
dave    fraud/prod/train       5    5    4    5    5
dave    churn/dev/model        0    4    4    4    4
dave    churn/dev/data         0    4    4    4    4
dave    churn/prod/model       0    4    4    4    4
dave    fraud/dev/ghost        5    5    -    5    5
dave    churn/prod/ghost       5    5    -    5    5
erin    fraud/dev/scorer       5    5    4    5    5
erin    fraud/dev/train        5    5    4    5    5
erin    fraud/staging/scorer   5    5    4    5    5
erin    fraud/prod/scorer      0    0    4    4    4
erin    fraud/prod/train       5    5    4    5    5
erin    churn/dev/model        5    5    4    5    5
erin    churn/dev/data         5    5    4    5    5
erin    churn/prod/model       0    0    4    4    4
erin    fraud/dev/ghost        5    5    -    5    5
erin    churn/prod/ghost       5    5    -    5    5
frank   fraud/dev/scorer       5    5    4    5    5
frank   fraud/dev/train        5    5    4    5    5
frank   fraud/staging/scorer   5    5    4    5    5
frank   fraud/prod/scorer      5    5    4    5    5
frank   fraud/prod/train       5    5    4    5    5
frank   churn/dev/model        5    5    4    5    5
frank   churn/dev/data         5    5    4    5    5
frank   churn/prod/model       5    5    4    5    5
frank   fraud/dev/ghost        5    5    -    5    5
frank   churn/prod/ghost       5    5    -    5    5
grace   fraud/dev/scorer       5    5    4    5    5
grace   fraud/dev/train        5    5    4    5    5
grace   fraud/staging/scorer   5    5    4    5    5
grace   fraud/prod/scorer      5    5    4    5    5
grace   fraud/prod/train       5    5    4    5    5
grace   churn/dev/model        0    0    4    4    4
grace   churn/dev/data         5    5    4    5    5
grace   churn/prod/model       0    0    4    4    4
grace   fraud/dev/ghost        5    5    -    5    5
grace   churn/prod/ghost       5    5    -    5    5
heidi   fraud/dev/scorer       5    5    4    5    5
heidi   churn/dev/model        5    5    4    5    5
heidi   churn/prod/model       5    5    4    5    5
heidi   churn/prod/ghost       5    5    -    5    5
EOF
)
OPS="show pull push label rm"
op_action() {
    case "$1" in
    show) echo artifact:Read ;;
    pull) echo artifact:Download ;;
    push) echo artifact:Write ;;
    label) echo artifact:Label ;;
    rm) echo artifact:Delete ;;
    esac
}
run_op() {
    local u="$1" op="$2" res="$3"
    case "$op" in
    show) run_cmd as "$u" coffer show "$res" ;;
    pull)
        rm -f "$FILES/matrix.out"
        run_cmd as "$u" coffer pull "$res" -o "$FILES/matrix.out"
        ;;
    push) run_cmd as "$u" coffer push "$FILES/payload" "$res" ;;
    label) run_cmd as "$u" coffer label "$res" --tag "seen-by=$u" ;;
    rm) run_cmd as "$u" coffer rm "$res" ;;
    esac
}
# Prediction of the server's answer from explain: reading needs Read (else
# hidden), then the action itself (else forbidden); a write needs Write; a
# missing artifact is 5. $2 is explain's verdict on artifact:Read.
predict() {
    local u="$1" read_effect="$2" op="$3" res="$4" found="$5"
    local a
    a=$(explain_effect "$u" "$(op_action "$op")" "$res")
    if [ "$op" = push ]; then
        [ "$a" = allow ] && echo 0 || echo 4
    elif [ "$found" != 1 ] || [ "$read_effect" != allow ]; then
        echo 5
    elif [ "$a" = allow ]; then
        echo 0
    else
        echo 4
    fi
}
TABLE="$E2E_ROOT/matrix.table"
printf '%-6s %-21s' user resource >"$TABLE"
for op in $OPS; do printf ' %-9s' "$op" >>"$TABLE"; done
printf '\n' >>"$TABLE"
MATRIX_BAD=0
while read -r u res w_show w_pull w_push w_label w_rm; do
    case "$u" in '#'* | '') continue ;; esac
    wants=("$w_show" "$w_pull" "$w_push" "$w_label" "$w_rm")
    col=0
    found=1
    case "$res" in *ghost) found=0 ;; esac
    printf '%-6s %-21s' "$u" "$res" >>"$TABLE"
    read_effect=$(explain_effect "$u" artifact:Read "$res")
    for op in $OPS; do
        want=${wants[$col]}
        col=$((col + 1))
        if [ "$want" = - ]; then
            printf ' %-9s' - >>"$TABLE"
            continue
        fi
        if [ "$op" = show ]; then
            pred=5
            [ "$found" = 1 ] && [ "$read_effect" = allow ] && pred=0
        else
            pred=$(predict "$u" "$read_effect" "$op" "$res" "$found")
        fi
        run_op "$u" "$op" "$res"
        got=$LAST_RC
        cell="$got"
        if [ "$got" = "$want" ]; then
            ok "matrix: $u $op $res -> $want"
        else
            fail "matrix: $u $op $res -> expected $want, got $got: $(head -c 200 "$LAST_ERR")"
            cell="$want!$got"
            MATRIX_BAD=1
        fi
        if [ "$pred" = "$got" ]; then
            ok "matrix: explain agrees for $u $op $res ($pred)"
        else
            fail "matrix: explain predicts $pred for $u $op $res, the server answered $got"
            cell="$cell?$pred"
            MATRIX_BAD=1
        fi
        if [ "$op" = pull ] && [ "$got" != 0 ] && [ -e "$FILES/matrix.out" ]; then
            fail "matrix: a refused pull by $u of $res left a file behind"
        fi
        printf ' %-9s' "$cell" >>"$TABLE"
    done
    printf '\n' >>"$TABLE"
done <<<"$MATRIX"
if [ "$MATRIX_BAD" -ne 0 ]; then
    {
        echo "# access matrix (cell: actual; 'E!A' expected E got A; '?P' explain predicted P):"
        sed 's/^/#   /' "$TABLE"
    } >&2
fi

# Content really flows for allowed cells.
expect_ok as grace coffer pull churn/dev/model -o "$FILES/grace.out"
assert_same_file "$FILES/grace.out" "$FILES/blob" "grace's download is the pushed content"
expect_ok as alice coffer pull fraud/dev/scorer@1 -o "$FILES/alice.out"
assert_same_file "$FILES/alice.out" "$FILES/scorer1" "alice downloads scorer@1"

# ==========================================================================
log "deny wins, clearance over policy, explanations name the deciding rule"
line=$(explain bob artifact:Download churn/dev/model)
assert_contains "$line" "deny (explicit_deny)" "bob's churn download: explicit deny"
assert_contains "$line" "contractors-no-churn" "the global deny is named"
assert_contains "$line" "ContractorsNeverTakeChurnContent" "its Sid is named"
run_cmd as bob coffer pull churn/dev/model -o "$FILES/bob.out"
assert_contains "$(cat "$LAST_ERR")" "contractors-no-churn" \
    "the refused pull names the deciding global policy"
line=$(explain bob artifact:Download fraud/dev/scorer)
assert_contains "$line" "allow (allow)" "bob's fraud model download is allowed"
assert_contains "$line" "DownloadAllButTrainingData" "... by the ml-engineer grant"
assert_contains "$line" "group:mle" "... through the group mle"
line=$(explain bob artifact:Download fraud/prod/scorer)
assert_contains "$line" "deny (clearance)" \
    "bob's role allows the model download, but clearance (internal < confidential) denies it"
line=$(explain alice artifact:Download fraud/prod/train)
assert_contains "$line" "deny (clearance)" "alice's DownloadContent grant is overruled by clearance"
assert_eq "$(explain_effect alice artifact:Download fraud/prod/train --mfa)" deny \
    "MFA does not lift the clearance rule"
line=$(explain frank artifact:Read fraud/dev/scorer)
assert_contains "$line" "deny (implicit_deny)" "frank: implicit deny (no binding at all)"
line=$(explain grace artifact:Download churn/prod/model)
assert_contains "$line" "ReadOwnTeamModels" "grace's grant comes from the custom role"
line=$(explain heidi artifact:Download churn/prod/model)
assert_contains "$line" "deny (implicit_deny)" \
    "without a team attribute the variable fails closed (heidi)"
line=$(explain alice artifact:Write churn/dev/new)
assert_contains "$line" "deny (implicit_deny)" "the scope fraud/* keeps alice's WriteInDev out of churn"
line=$(explain alice artifact:Write fraud/dev/new)
assert_contains "$line" "WriteInDev" "alice may create new dev artifacts in fraud"
expect_exit 4 as alice coffer push "$FILES/payload" churn/dev/new --kind model
expect_ok as alice coffer push "$FILES/payload" fraud/dev/new --kind model
assert_eq "$(ls_set bob fraud/dev/new)" "fraud/dev/new" \
    "alice's new artifact (default sensitivity internal) is listed for bob"

# ==========================================================================
log "MFA guardrails: denied without MFA, allowed with it"
expect_exit 4 as admin coffer pull fraud/prod/train -o "$FILES/admin.out"
assert_contains "$(cat "$LAST_ERR")" "DenyRestrictedDownloadsWithoutMfa" \
    "the admin cannot download restricted content without MFA (guardrail named)"
assert_no_file "$FILES/admin.out" "no file from the refused restricted download"
expect_ok as admin-mfa coffer pull fraud/prod/train -o "$FILES/admin.out"
assert_same_file "$FILES/admin.out" "$FILES/blob" "with MFA the admin downloads restricted content"
line=$(explain admin artifact:Download fraud/prod/train)
assert_contains "$line" "restricted-downloads-need-mfa" "explain names the restricted guardrail"
assert_eq "$(explain_effect admin artifact:Download fraud/prod/train --mfa)" allow \
    "explain --mfa: the admin may download restricted content"
assert_eq "$(explain_effect carol artifact:Download fraud/prod/train --mfa)" deny \
    "MFA grants nothing by itself (carol is a viewer)"
assert_eq "$(explain_effect admin artifact:Write fraud/prod/scorer)" deny \
    "prod writes are denied without MFA"
line=$(explain admin artifact:Write fraud/prod/scorer)
assert_contains "$line" "DenyProdWritesAndPromotionsWithoutMfa" "explain names the prod guardrail"
assert_eq "$(explain_effect admin artifact:Write fraud/prod/scorer --mfa)" allow \
    "explain --mfa: the admin may write into prod"
assert_eq "$(explain_effect erin artifact:Write fraud/prod/scorer --mfa)" deny \
    "MFA does not give the deployer a write grant"
assert_eq "$(explain_effect admin artifact:Write fraud/staging/scorer)" allow \
    "staging writes need no MFA"
assert_eq "$(explain_effect erin artifact:Download fraud/prod/scorer)" allow \
    "erin (deployer) downloads prod models without MFA (not restricted)"
expect_exit 4 as admin coffer push "$FILES/payload" fraud/prod/scorer
expect_ok as admin-mfa coffer push "$FILES/payload" fraud/prod/scorer
expect_ok as admin coffer pull fraud/prod/scorer -o "$FILES/admin2.out"
assert_same_file "$FILES/admin2.out" "$FILES/payload" \
    "a confidential prod download needs no MFA (it gets the version pushed with MFA)"

# ==========================================================================
log "per-version grant: fraud/dev/x@1 only"
expect_ok as admin coffer role bind x-v1 user:frank
x1_sha=$(sha256sum "$FILES/x1" | cut -c1-64)
expect_ok as frank coffer show fraud/dev/x@1
assert_contains "$(cat "$LAST_OUT")" "fraud/dev/x@1" "show x@1 names version 1"
expect_ok as frank coffer pull fraud/dev/x@1 -o "$FILES/x1.out"
assert_same_file "$FILES/x1.out" "$FILES/x1" "frank downloads exactly version 1"
expect_ok as frank coffer pull "fraud/dev/x@sha256:$x1_sha" -o "$FILES/x1s.out"
assert_same_file "$FILES/x1s.out" "$FILES/x1" "the content address of version 1 is granted too"
expect_exit 5 as frank coffer show fraud/dev/x@2
msg_v2=$(cat "$LAST_ERR")
expect_exit 5 as frank coffer show fraud/dev/x@9
assert_eq "$(sed 's/@9/@2/' "$LAST_ERR")" "$msg_v2" \
    "version 2 (not granted) answers exactly like a missing version 9"
expect_exit 5 as frank coffer pull fraud/dev/x@2 -o "$FILES/x2.out"
expect_exit 5 as frank coffer pull fraud/dev/x -o "$FILES/x2.out"
assert_no_file "$FILES/x2.out" "no download of the latest (version 2)"
expect_exit 5 as frank coffer versions fraud/dev/x
check_ls frank "" "fraud/dev/x"
assert_eq "$(explain_effect frank artifact:Download fraud/dev/x@1)" allow "explain: x@1 allowed"
assert_eq "$(explain_effect frank artifact:Download fraud/dev/x@2)" deny "explain: x@2 denied"
assert_eq "$(explain_effect frank artifact:Download fraud/dev/x@10)" deny \
    "explain: the pattern x@1 does not match x@10"
expect_exit 4 as frank coffer rm fraud/dev/x@1
expect_exit 4 as frank coffer push "$FILES/payload" fraud/dev/x

# ==========================================================================
log "scope narrowing, then unbinding removes access at once"
expect_ok as admin coffer role bind viewer user:frank --scope 'churn/dev/*'
check_ls frank "" "churn/dev/data churn/dev/model fraud/dev/x"
expect_ok as frank coffer show churn/dev/data
expect_exit 5 as frank coffer show churn/prod/model
expect_exit 5 as frank coffer show churn/staging/secret
expect_exit 4 as frank coffer pull churn/dev/model -o "$FILES/f.out"
line=$(explain frank artifact:Read churn/prod/model)
assert_contains "$line" "deny (implicit_deny)" "explain: viewer scoped to churn/dev/* does not reach prod"
expect_ok as admin coffer role unbind viewer user:frank --scope 'churn/dev/*'
expect_exit 5 as frank coffer show churn/dev/data
expect_ok as admin coffer role unbind x-v1 user:frank
expect_exit 5 as frank coffer pull fraud/dev/x@1 -o "$FILES/x1b.out"
check_ls frank "" ""
expect_exit 5 as admin coffer role unbind x-v1 user:frank

# Removing bob from contractors lifts the global deny at once.
expect_ok as admin coffer group member rm contractors user:bob
expect_ok as bob coffer pull churn/dev/model -o "$FILES/bob2.out"
assert_same_file "$FILES/bob2.out" "$FILES/blob" "bob downloads churn models once out of contractors"
expect_exit 4 as bob coffer pull churn/dev/data -o "$FILES/bob3.out"
line=$(explain bob artifact:Download churn/dev/data)
assert_contains "$line" "deny (implicit_deny)" "datasets stay out of reach of ml-engineers"
# Removing the group binding removes bob's access.
expect_ok as admin coffer role unbind ml-engineer group:mle
expect_exit 5 as bob coffer show fraud/dev/scorer
check_ls bob "" ""
expect_ok as admin coffer role bind ml-engineer group:mle
expect_ok as bob coffer show fraud/dev/scorer

# Alice loses everything but tagging when her scoped binding goes.
expect_exit 5 as admin coffer role unbind data-scientist user:alice --scope 'fraud/dev/*'
expect_ok as admin coffer role unbind data-scientist user:alice --scope 'fraud/*'
expect_exit 5 as alice coffer pull fraud/dev/scorer -o "$FILES/a.out"
check_ls alice "" ""
expect_ok as admin coffer role bind data-scientist user:alice --scope 'fraud/*'
expect_ok as alice coffer pull fraud/dev/scorer -o "$FILES/a.out"
# Without --scope, unbind removes every binding of the role to the principal.
expect_ok as admin coffer role bind data-scientist user:alice --scope 'churn/dev/*'
check_ls alice churn/ "churn/dev/data churn/dev/model"
expect_ok as admin coffer role unbind data-scientist user:alice
check_ls alice "" ""
expect_exit 5 as admin coffer role unbind data-scientist user:alice
expect_ok as admin coffer role bind data-scientist user:alice --scope 'fraud/*'
check_ls alice churn/ ""

# ==========================================================================
log "label vs declassify; version labels and clearance"
expect_ok as alice coffer label fraud/dev/eval --sensitivity confidential
expect_ok as alice coffer show fraud/dev/eval
assert_contains "$(cat "$LAST_OUT")" "confidential" "raising the label needs Label only"
expect_exit 5 as bob coffer show fraud/dev/eval
assert_not_contains "$(ls_set bob fraud/dev/)" "fraud/dev/eval" \
    "a raised label hides the artifact from listings below the new level"
expect_exit 4 as alice coffer label fraud/dev/eval --sensitivity internal
assert_contains "$(cat "$LAST_ERR")" "artifact:Declassify" \
    "lowering the label needs artifact:Declassify (named in the error)"
assert_eq "$(explain_effect alice artifact:Declassify fraud/dev/eval)" deny "explain: no Declassify"
assert_eq "$(explain_effect alice artifact:Label fraud/dev/eval)" allow "explain: Label allowed"
expect_ok as alice coffer label fraud/dev/eval --sensitivity confidential --tag stage=review
expect_exit 4 as carol coffer label fraud/dev/eval --sensitivity restricted
expect_exit 5 as frank coffer label fraud/dev/eval --sensitivity public
expect_ok as admin coffer label fraud/dev/eval --sensitivity public
expect_ok as bob coffer show fraud/dev/eval
assert_contains "$(cat "$LAST_OUT")" "public" "declassified by the admin (who has Declassify)"
# A version may carry a higher label than its artifact.
expect_ok as admin coffer label fraud/dev/scorer@1 --sensitivity confidential
expect_exit 5 as bob coffer show fraud/dev/scorer@1
expect_ok as bob coffer show fraud/dev/scorer@2
expect_ok as bob coffer versions fraud/dev/scorer --json
bob_versions=$(grep -oE '"version": *[0-9]+' "$LAST_OUT" | grep -oE '[0-9]+' | tr '\n' ' ')
assert_not_contains " $bob_versions" " 1 " "bob's version list omits version 1 (confidential)"
assert_contains " $bob_versions" " 2 " "bob's version list keeps version 2"
expect_ok as alice coffer show fraud/dev/scorer@1
expect_exit 4 as alice coffer label fraud/dev/scorer@1 --sensitivity internal
assert_contains "$(cat "$LAST_ERR")" "artifact:Declassify" "declassifying a version needs Declassify"

# ==========================================================================
log "policy validation: invalid documents are refused, naming statement and element"
cat >"$POL/bad-operator.json" <<'EOF'
{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Fine", "Effect": "Allow", "Action": "artifact:Read", "Resource": "*"},
    {"Sid": "ProdOnly", "Effect": "Allow", "Action": "artifact:Read", "Resource": "*/prod/*",
     "Condition": {"StringEq": {"coffer:Environment": "prod"}}}
  ]
}
EOF
cat >"$POL/bad-action.json" <<'EOF'
{"Version": "2012-10-17",
 "Statement": [{"Effect": "Allow", "Action": "artifact:Fetch", "Resource": "*"}]}
EOF
cat >"$POL/bad-cidr.json" <<'EOF'
{"Version": "2012-10-17",
 "Statement": [{"Sid": "Office", "Effect": "Allow", "Action": "artifact:Read", "Resource": "*",
   "Condition": {"IpAddress": {"coffer:SourceIp": "10.0.0.0/33"}}}]}
EOF
cat >"$POL/no-principal.json" <<'EOF'
{"Version": "2012-10-17",
 "Statement": [{"Sid": "G", "Effect": "Deny", "Action": "artifact:Read", "Resource": "*"}]}
EOF
cat >"$POL/not-json.json" <<'EOF'
{"Version": "2012-10-17", "Statement": [
EOF
expect_exit 2 as admin coffer policy put bad-operator "$POL/bad-operator.json"
assert_contains "$(cat "$LAST_ERR")" 'statement 1 (Sid "ProdOnly"): Condition: unknown operator "StringEq"' \
    "the error names statement 1, its Sid, the element and the operator"
expect_exit 2 as admin coffer policy put bad-action "$POL/bad-action.json"
assert_contains "$(cat "$LAST_ERR")" 'statement 0: Action: unknown action "artifact:Fetch"' \
    "the error names statement 0 and the unknown action"
expect_exit 2 as admin coffer policy put bad-cidr "$POL/bad-cidr.json"
assert_contains "$(cat "$LAST_ERR")" 'statement 0 (Sid "Office"): Condition: IpAddress: coffer:SourceIp: "10.0.0.0/33"' \
    "the error names the statement, the operator, the key and the value"
expect_exit 2 as admin coffer policy put no-principal "$POL/no-principal.json" --global
assert_contains "$(cat "$LAST_ERR")" 'statement 0 (Sid "G"): Principal' \
    "a global policy without Principal is refused, naming the element"
expect_exit 2 as admin coffer role create with-principal --policy "$POL/contractors.json"
assert_contains "$(cat "$LAST_ERR")" 'Principal' "a role policy with Principal is refused"
expect_exit 2 as admin coffer policy put not-json "$POL/not-json.json"
for p in bad-operator bad-action bad-cidr no-principal not-json; do
    expect_exit 5 as admin coffer policy show "$p"
done
expect_exit 5 as admin coffer role show with-principal
expect_exit 4 as carol coffer policy put sneaky "$POL/tagger.json"
expect_exit 4 as carol coffer policy explain --as user:carol --action artifact:Read --resource '*'
expect_exit 4 as dave coffer role bind admin user:dave

# ==========================================================================
log "shutdown"
server_stop
assert_eq "$?" 0 "the server shuts down cleanly (no sanitizer report)"
if grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$SERVER_LOG"; then
    fail "sanitizer report in the server log"
    grep -E -A5 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$SERVER_LOG" | head -n 20 >&2
else
    ok "no sanitizer report in the server log"
fi

e2e_finish

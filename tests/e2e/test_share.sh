#!/usr/bin/env bash
# End-to-end test of share links: a link downloads exactly one version and
# its metadata with no other credential; expiry, revocation, download limits
# under concurrency, IP restrictions, the restricted-sensitivity guardrail,
# tampered and truncated tokens, and the audit trail of every use.
. "$(dirname "$0")/lib.sh"
e2e_init share

ADMIN_PW='Adm1n-Share-Password-long!'
DATA="$E2E_ROOT/data"
FILES=$(e2e_tmpdir files)

as() {
    local u="$1"
    shift
    (
        export XDG_CONFIG_HOME="$E2E_ROOT/config-$u"
        "$@"
    )
}
pw_of() { printf '%s-Share-Pw-2024!' "$1"; }

# fetch URL OUT: anonymous GET; prints the HTTP status.
fetch() {
    curl -s --max-time 60 --cacert "$DATA/tls/ca.pem" -o "$2" -w '%{http_code}' "$1"
}

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
ok "server starts"
as admin login_cli admin "$ADMIN_PW" >/dev/null 2>&1
for u in bob carol; do
    pw_of "$u" | as admin coffer user add "$u" --password-stdin >/dev/null 2>&1
    as "$u" login_cli "$u" "$(pw_of "$u")" >/dev/null 2>&1
done
expect_ok as admin coffer role bind data-scientist user:bob
expect_ok as admin coffer role bind viewer user:carol

random_file "$FILES/v1" 300000
random_file "$FILES/v2" 1000
random_file "$FILES/other" 1000
random_file "$FILES/secret" 1000
expect_ok as admin coffer push "$FILES/v1" fraud/dev/model --kind model
expect_ok as admin coffer push "$FILES/v2" fraud/dev/model
expect_ok as admin coffer push "$FILES/other" fraud/dev/other --kind model
expect_ok as admin coffer push "$FILES/secret" fraud/dev/secret --kind model --sensitivity restricted
expect_ok as admin coffer push "$FILES/other" fraud/staging/model --kind model

# --------------------------------------------------------------------------
log "create and use"
run_cmd as bob coffer share create fraud/dev/model@1 --expires 1h
assert_eq "$LAST_RC" 0 "bob (data-scientist) shares a dev version"
URL=$(head -n 1 "$LAST_OUT")
TOKEN=${URL##*/}
assert_contains "$URL" "$SERVER_URL/v1/shared/cfl_" "share create prints an HTTPS URL of the server"
assert_eq "${#TOKEN}" 47 "the token is cfl_ and 43 base64url characters (256 random bits)"
check "the token is base64url" bash -c "[[ '${TOKEN#cfl_}' =~ ^[A-Za-z0-9_-]{43}$ ]]"
assert_eq "$(fetch "$URL" "$FILES/got1")" 200 "the link downloads with no other credential"
assert_same_file "$FILES/got1" "$FILES/v1" "the link serves exactly version 1"
assert_eq "$(fetch "$URL/meta" "$FILES/meta")" 200 "the link reads the version's metadata"
assert_eq "$(json_field version "$FILES/meta")" 1 "metadata is that of version 1"
assert_eq "$(json_field path "$FILES/meta")" fraud/dev/model "metadata names the path"
assert_eq "$(json_field sha256 "$FILES/meta")" "$(sha256sum "$FILES/v1" | cut -d' ' -f1)" \
    "metadata carries the content address"
assert_not_contains "$(cat "$FILES/meta")" '"children"' "metadata reveals no other versions"
sync
check_not "the token is not stored in the database (only its hash)" \
    grep -qaF "$TOKEN" "$DATA/coffer.db" "$DATA/coffer.db-wal"
check_not "the token is not in the audit log" grep -rqaF "$TOKEN" "$DATA/audit"

# --------------------------------------------------------------------------
log "a link grants nothing else"
AUTH="Authorization: Bearer $TOKEN"
assert_eq "$(api GET /v1/objects/fraud/dev/model@2 -H "$AUTH")" 401 "the token is no credential for another version"
assert_eq "$(api GET /v1/objects/fraud/dev/model@1 -H "$AUTH")" 401 "nor for the API's download route"
assert_eq "$(api GET '/v1/list?prefix=fraud/' -H "$AUTH")" 401 "nor for listings"
assert_eq "$(api GET /v1/versions/fraud/dev/model -H "$AUTH")" 401 "nor for version lists"
assert_eq "$(api PUT /v1/objects/fraud/dev/model -H "$AUTH" -H 'Content-Type: application/octet-stream' --data-binary @"$FILES/v2")" 401 \
    "nor for writes"
assert_eq "$(api GET "/v1/shared/$TOKEN/2")" 401 "no other version under the link"
assert_eq "$(api GET "/v1/shared/$TOKEN/../../objects/fraud/dev/model@2")" 401 "no path tricks"
assert_eq "$(api DELETE "/v1/shared/$TOKEN")" 405 "no writes through the link"
TAMPERED="${TOKEN:0:20}$([ "${TOKEN:20:1}" = A ] && echo B || echo A)${TOKEN:21}"
assert_eq "$(fetch "$SERVER_URL/v1/shared/$TAMPERED" "$FILES/x")" 401 "a tampered token fails"
assert_eq "$(fetch "$SERVER_URL/v1/shared/${TOKEN:0:46}" "$FILES/x")" 401 "a truncated token fails"
assert_eq "$(fetch "$SERVER_URL/v1/shared/${TOKEN}A" "$FILES/x")" 401 "an extended token fails"
assert_eq "$(fetch "$SERVER_URL/v1/shared/cfs_${TOKEN#cfl_}" "$FILES/x")" 401 "a token of another kind fails"

# --------------------------------------------------------------------------
log "download limit under concurrency"
run_cmd as bob coffer share create fraud/dev/model@2 --expires 1h --max-downloads 2
assert_eq "$LAST_RC" 0 "a 2-download link"
URL2=$(head -n 1 "$LAST_OUT")
pids=()
for i in $(seq 1 10); do
    fetch "$URL2" "$FILES/par.$i" >"$FILES/par.$i.code" &
    pids+=($!)
done
wait "${pids[@]}"
n200=0
n410=0
for i in $(seq 1 10); do
    case "$(cat "$FILES/par.$i.code")" in
    200) n200=$((n200 + 1)) ;;
    410) n410=$((n410 + 1)) ;;
    esac
done
assert_eq "$n200" 2 "10 parallel downloads of a 2-use link: exactly 2 succeed"
assert_eq "$n410" 8 "the other 8 are refused with 410"
for i in $(seq 1 10); do
    if [ "$(cat "$FILES/par.$i.code")" = 200 ]; then
        cmp -s "$FILES/par.$i" "$FILES/v2" || fail "parallel download $i has the wrong content"
    fi
done
assert_eq "$(fetch "$URL2" "$FILES/x")" 410 "the used-up link stays refused"
run_cmd as bob coffer share ls
assert_contains "$(cat "$LAST_OUT")" "2/2" "share ls shows the uses"
assert_contains "$(cat "$LAST_OUT")" "127.0.0.1" "share ls shows the last use's address"
assert_contains "$(cat "$LAST_OUT")" "used-up" "share ls shows the state"

# --------------------------------------------------------------------------
log "expiry and revocation"
run_cmd as bob coffer share create fraud/dev/model@1 --expires 2s
URL3=$(head -n 1 "$LAST_OUT")
assert_eq "$(fetch "$URL3" "$FILES/x")" 200 "a short link works before expiry"
sleep 3
assert_eq "$(fetch "$URL3" "$FILES/x")" 410 "and is refused after expiry"
assert_eq "$(fetch "$URL3/meta" "$FILES/x")" 410 "metadata too"
run_cmd as bob coffer --json share create fraud/dev/model@1
assert_eq "$LAST_RC" 0 "share create without --expires uses the default lifetime"
URL4=$(json_field url "$LAST_OUT")
ID4=$(json_field id "$LAST_OUT")
exp4=$(json_field expires_at "$LAST_OUT")
now=$(date +%s)
check "the default lifetime is 24 h" test $((exp4 - now)) -gt 86000 -a $((exp4 - now)) -le 86400
assert_eq "$(fetch "$URL4" "$FILES/x")" 200 "link works before revocation"
expect_exit 5 as carol coffer share revoke "$ID4"
expect_ok as bob coffer share revoke "$ID4"
assert_eq "$(fetch "$URL4" "$FILES/x")" 410 "revocation takes effect at once"
expect_exit 6 as bob coffer share revoke "$ID4"
expect_exit 2 as bob coffer share create fraud/dev/model@1 --expires 8d
assert_contains "$(cat "$LAST_ERR")" "maximum" "longer than the configured maximum (7 days) is refused"
expect_exit 2 as bob coffer share create fraud/dev/model@1 --expires soon

# --------------------------------------------------------------------------
log "IP restriction"
run_cmd as bob coffer share create fraud/dev/model@1 --ip 10.0.0.0/8 --ip 2001:db8::/32
URL5=$(head -n 1 "$LAST_OUT")
assert_eq "$(fetch "$URL5" "$FILES/x")" 403 "a link restricted to other networks is refused from 127.0.0.1"
run_cmd as bob coffer share create fraud/dev/model@1 --ip 127.0.0.0/8 --max-downloads 1
URL6=$(head -n 1 "$LAST_OUT")
assert_eq "$(fetch "$URL6" "$FILES/x")" 200 "a link restricted to 127.0.0.0/8 works from 127.0.0.1"
expect_exit 2 as bob coffer share create fraud/dev/model@1 --ip 10.0.0.0/33

# --------------------------------------------------------------------------
log "who may share what"
expect_exit 4 as admin coffer share create fraud/dev/secret@1
run_cmd as admin coffer policy explain --as user:admin --action artifact:Share \
    --resource fraud/dev/secret@1 --mfa
assert_contains "$(cat "$LAST_OUT" "$LAST_ERR")" "DenySharingRestrictedVersions" \
    "restricted versions cannot be shared, even with MFA (built-in guardrail)"
run_cmd as admin coffer policy explain --as user:admin --action artifact:Share \
    --resource fraud/dev/model@1 --mfa
assert_not_contains "$(cat "$LAST_OUT" "$LAST_ERR")" "DenySharingRestrictedVersions" \
    "the guardrail leaves other sensitivities alone"
expect_exit 5 as bob coffer share create fraud/dev/secret@1
expect_exit 4 as carol coffer share create fraud/dev/model@1
expect_exit 4 as bob coffer share create fraud/staging/model@1
expect_exit 5 as bob coffer share create fraud/dev/nosuch@1

# --------------------------------------------------------------------------
log "a deleted version is no longer served"
run_cmd as bob coffer share create fraud/dev/other@1
URL7=$(head -n 1 "$LAST_OUT")
expect_ok as admin coffer rm fraud/dev/other@1
assert_eq "$(fetch "$URL7" "$FILES/x")" 410 "a link to a deleted version is refused"

# --------------------------------------------------------------------------
log "audit"
LINK1=$(as bob coffer --json share ls | grep -oE '"id": [0-9]+' | tail -n 1 | grep -oE '[0-9]+')
as admin coffer audit export >"$FILES/audit.jsonl" 2>"$FILES/audit.err"
check "the audit trail can be exported" test -s "$FILES/audit.jsonl"
uses=$(grep -F "\"principal\":\"link:$LINK1\"" "$FILES/audit.jsonl" | grep -F '"action":"artifact:Download"' |
    grep -F '"decision":"allow"' | grep -F '"source_ip":"127.0.0.1"' | grep -cF "\"link_id\":$LINK1")
assert_eq "$uses" 1 "the use of link $LINK1 is audited as link:$LINK1 with its id and source IP"
check "refused uses are audited with the link id" \
    bash -c "grep -F 'share link used up' '$FILES/audit.jsonl' | grep -qF '\"source_ip\":\"127.0.0.1\"'"
check "unknown tokens are audited" grep -qF 'unknown share link' "$FILES/audit.jsonl"
check "link creation is audited" bash -c "grep -F 'share link created' '$FILES/audit.jsonl' | grep -qF 'user:bob'"
check "revocation is audited" grep -qF 'share link revoked by its creator' "$FILES/audit.jsonl"

server_stop || fail "server stops cleanly"
e2e_finish

#!/usr/bin/env bash
# Every change to who a caller is takes effect on the very next request
# (nothing about a session may be remembered past a change):
#   - logout: the token is refused at once (20 fresh sessions, each used
#     three times first);
#   - a disabled user's session is refused at once;
#   - group membership added and removed shows at once in whoami and in
#     authorization (a role bound to the group grants and stops granting a
#     read; a refused read answers 403 or 404);
#   - while requests with the same token hammer the server from several
#     clients, the logout still wins for every request sent after it.
. "$(dirname "$0")/lib.sh"
e2e_init revocation

ADMIN_PW='Adm1n-Revocation-Password!'
BOB_PW='Bob-Revocation-Password-1!'
DATA="$E2E_ROOT/data"
run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
server_start "$DATA" || { fail "server starts"; e2e_finish; }
ADMIN=$(api_token admin "$ADMIN_PW")
assert_ne "$ADMIN" "" "admin session"
auth() { printf 'Authorization: Bearer %s' "$1"; }
jpost() { api POST "$1" -H "$(auth "$ADMIN")" -H 'Content-Type: application/json' --data-binary "$2"; }

log "logout takes effect on the next request"
bad=0
for i in $(seq 1 20); do
    T=$(api_token admin "$ADMIN_PW")
    for _ in 1 2 3; do
        [ "$(api GET /v1/auth/whoami -H "$(auth "$T")")" = 200 ] || bad=$((bad + 1))
    done
    [ "$(api POST /v1/auth/logout -H "$(auth "$T")")" = 204 ] || [ "$(api_body)" = "" ] ||
        bad=$((bad + 1))
    [ "$(api GET /v1/auth/whoami -H "$(auth "$T")")" = 401 ] || bad=$((bad + 1))
done
assert_eq "$bad" 0 "20 warmed-up sessions: each refused right after its logout"

log "a disabled user is refused on the next request"
status=$(jpost /v1/users "{\"name\":\"bob\",\"password\":\"$BOB_PW\"}")
check "create bob ($status)" test "$status" = 200 -o "$status" = 201
BOB=$(api_token bob "$BOB_PW")
assert_ne "$BOB" "" "bob's session"
for _ in 1 2 3; do api GET /v1/auth/whoami -H "$(auth "$BOB")" >/dev/null; done
assert_eq "$(api GET /v1/auth/whoami -H "$(auth "$BOB")")" 200 "bob's session works"
status=$(api POST /v1/users/bob/disable -H "$(auth "$ADMIN")")
assert_eq "$status" 200 "disable bob"
assert_eq "$(api GET /v1/auth/whoami -H "$(auth "$BOB")")" 401 "bob's session is refused at once"

log "group membership shows at once"
status=$(jpost /v1/users "{\"name\":\"carol\",\"password\":\"$BOB_PW\"}")
check "create carol ($status)" test "$status" = 200 -o "$status" = 201
CAROL=$(api_token carol "$BOB_PW")
assert_ne "$CAROL" "" "carol's session"
status=$(jpost /v1/groups '{"name":"readers"}')
check "create group readers ($status)" test "$status" = 200 -o "$status" = 201
random_file "$E2E_ROOT/m.bin" 1000
status=$(api PUT "/v1/objects/rev/dev/model?kind=model" -H "$(auth "$ADMIN")" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$E2E_ROOT/m.bin")
assert_eq "$status" 201 "push an artifact"
status=$(jpost /v1/roles/data-scientist/bindings '{"principal":"group:readers","scope":"rev/*"}')
check "bind data-scientist to group:readers on rev/* ($status: $(api_body | head -c 200))" \
    test "$status" = 200 -o "$status" = 201
for _ in 1 2 3; do api GET /v1/artifacts/rev/dev/model -H "$(auth "$CAROL")" >/dev/null; done
status=$(api GET /v1/artifacts/rev/dev/model -H "$(auth "$CAROL")")
check "carol cannot read before joining the group ($status)" test "$status" = 403 -o "$status" = 404
status=$(jpost /v1/groups/readers/members '{"principal":"user:carol"}')
check "add carol to readers ($status)" test "$status" = 200 -o "$status" = 201
assert_eq "$(api GET /v1/artifacts/rev/dev/model -H "$(auth "$CAROL")")" 200 \
    "carol reads at once after joining"
api GET /v1/auth/whoami -H "$(auth "$CAROL")" >/dev/null
assert_contains "$(api_body)" '"readers"' "whoami lists the group at once"
status=$(api DELETE "/v1/groups/readers/members?principal=user:carol" -H "$(auth "$ADMIN")")
check "remove carol from readers ($status)" test "$status" = 200 -o "$status" = 204
status=$(api GET /v1/artifacts/rev/dev/model -H "$(auth "$CAROL")")
check "carol is refused at once after leaving ($status)" test "$status" = 403 -o "$status" = 404

log "logout under concurrent use of the same token"
T=$(api_token admin "$ADMIN_PW")
hammer() {
    local out="$1" i
    for i in $(seq 1 400); do
        printf '%s %s\n' "$(date +%s%N)" \
            "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$DATA/tls/ca.pem" \
                -H "$(auth "$T")" "$SERVER_URL/v1/auth/whoami")"
    done >"$out"
}
HAMMERS=()
for k in 1 2 3 4; do
    hammer "$E2E_ROOT/hammer-$k.txt" &
    HAMMERS+=("$!")
    bg_track "$!"
done
sleep 1
status=$(api POST /v1/auth/logout -H "$(auth "$T")")
AFTER=$(date +%s%N)
wait "${HAMMERS[@]}"
# A request whose send started after the logout answered must be refused.
late_ok=$(cat "$E2E_ROOT"/hammer-*.txt | awk -v t="$AFTER" '$1 > t && $2 == 200' | wc -l)
late=$(cat "$E2E_ROOT"/hammer-*.txt | awk -v t="$AFTER" '$1 > t' | wc -l)
before=$(cat "$E2E_ROOT"/hammer-*.txt | awk -v t="$AFTER" '$1 <= t && $2 == 200' | wc -l)
check "the token worked before the logout ($before answers)" test "$before" -gt 0
check "requests were sent after the logout ($late)" test "$late" -gt 0
assert_eq "$late_ok" 0 "no request sent after the logout was accepted"

run_cmd server_stop
assert_eq "$LAST_RC" 0 "clean stop"
e2e_finish

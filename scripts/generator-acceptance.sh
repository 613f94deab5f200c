#!/usr/bin/env bash
# Acceptance test of the endpoint generator (README, "Add an endpoint"), run
# by .ci/run. In a copy of the repository it generates resources that use
# every field type, every rule, both index options, a ref to a generated
# resource and to the sample's project, and --parent children of both; then
# runs go vet, go build and the tests of the packages the generator touches
# (SQLite, and PostgreSQL when TEST_DATABASE_URL is set; the models tests
# migrate every version up, down and up again), and shows that the
# conformance suite covers every new route. It re-runs the generator (no
# change), edits a generated file and re-runs (refused, nothing written),
# runs staticcheck and gosec over the generated code,
# destroys everything (the tree is as before apart from the kept
# migrations) and builds and tests again.
#
#   scripts/generator-acceptance.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.26.10}

log() { printf '== generator acceptance: %s\n' "$*"; }
fail() {
  echo "FAIL: generator acceptance: $*" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
repo="$work/repo"
mkdir "$repo"
log "copy the repository to $repo"
# Tracked and new (not ignored) files: the working tree as it is, without .git.
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$repo"
cd "$repo"

# snapshot lists every file of the tree with its hash.
snapshot() { find . -type f -print0 | sort -z | xargs -0 sha256sum; }

go build -o "$work/rampart" .
gen() { "$work/rampart" generate "$@"; }

tag=(resource tag 'name:string:required,min=1,max=50:unique' 'color:enum(red|green|blue):required:index'
  --quota ProjectsPerUser)
item=(resource item
  'title:string:required,min=2,max=120:index'
  'contact:string:optional,email,max=200'
  'homepage:string:optional,url,max=300'
  'code:string:optional,alphanum,len=8'
  'external_id:string:optional,uuid4'
  'kind:string:optional,oneof=a|b|c'
  'notes:text:optional,max=5000'
  'quantity:int:required,min=0,max=1000:index'
  'rank:int:optional,gte=1,lte=10'
  'views:bigint:optional,gte=0'
  'active:bool:required'
  'price:decimal(10,2):required'
  'starts_at:time:optional:index'
  'due_on:date:required:index'
  'serial:uuid:required:unique'
  'status:enum(draft|live|archived):required:index'
  'tag_id:ref(tag):optional'
  'project_id:ref(project):required:index')
comment=(resource comment --parent item --through-parent 'body:text:required,max=2000' 'tag_id:ref(tag):optional'
  "signature:string:default='',max=100" 'pinned:bool:default=false' 'remind_on:date:optional')
milestone=(resource milestone --parent project 'title:string:required' 'due_on:date:optional'
  --quota TasksPerProject --body-limit 8 --actions create,show,list,delete)

before=$(snapshot)

log "--dry-run and --diff write nothing"
gen "${tag[@]}" --dry-run >/dev/null
gen "${tag[@]}" --diff >"$work/diff"
grep -q '^+++ b/models/tag.go' "$work/diff" || fail "--diff shows no diff of models/tag.go"
[ "$(snapshot)" = "$before" ] || fail "--dry-run or --diff changed the tree"

log "bad arguments change nothing"
for bad in 'resource Note title:string' 'resource note title:strin' 'resource note title:string:required,nosuchrule' \
  'resource note owner_id:string' 'resource select title:string' 'resource note title:string --parent nosuch' \
  'resource note title:string --actions list' 'destroy nosuch'; do
  # shellcheck disable=SC2086 # word splitting is the point
  if gen $bad >/dev/null 2>"$work/err"; then fail "generate $bad succeeded"; fi
  [ "$(wc -l <"$work/err")" -eq 1 ] || fail "generate $bad: the error is not one line: $(cat "$work/err")"
done
[ "$(snapshot)" = "$before" ] || fail "a refused command changed the tree"

log "generate: tag, item (every type and rule), comment (child of item, through it), milestone (child of project)"
gen "${tag[@]}"
gen "${item[@]}"
gen "${comment[@]}"
gen "${milestone[@]}"
gen check

log "go vet, go build, go test (SQLite${TEST_DATABASE_URL:+ and PostgreSQL})"
unformatted=$(gofmt -l .)
[ -z "$unformatted" ] || fail "gofmt would change: $unformatted"
go vet ./...
go build ./...
go test -count=1 . -run 'TestDependencyDirection|TestPackageDocs|TestTopLevelLayout|TestSQLIsConstant'
go test -count=1 ./models ./app/generator
go test -count=1 -v ./handlers >"$work/handlers.log" || {
  grep -E -- '^\s*(--- FAIL|FAIL|panic)|_test.go:[0-9]+:' "$work/handlers.log" | head -50 >&2
  fail "the handlers tests failed"
}

log "staticcheck and gosec: generated code is as clean as the rest"
bash scripts/static.sh staticcheck
bash scripts/static.sh gosec

log "the conformance suite covers every new route"
dialects=(sqlite)
[ -n "${TEST_DATABASE_URL:-}" ] && dialects+=(postgres)
routes=$(grep -oE 'method: http\.Method[A-Za-z]+, path: "[^"]+"' handlers/routes_gen.go |
  sed -E 's/method: http\.Method([A-Za-z]+), path: "([^"]+)"/\1 \2/' | awk '{print toupper($1) "_" $2}')
# 19 new routes and the 10 of the sample's projects and tasks.
[ "$(echo "$routes" | wc -l)" -eq 29 ] || fail "the registry has $(echo "$routes" | wc -l) routes, want 29"
for d in "${dialects[@]}"; do
  for r in $routes; do
    for check in 2xx 401 404_ids; do
      grep -qF -- "--- PASS: TestRouteTable/$d/$check/$r " "$work/handlers.log" ||
        fail "TestRouteTable/$d/$check did not cover $r"
    done
  done
done
echo "$routes" | sed 's/^/   covered: /'

log "re-running the generator changes nothing"
generated=$(snapshot)
for spec in tag item comment milestone; do
  declare -n args=$spec
  out=$(gen "${args[@]}")
  [ "$out" = "nothing to do: every file is up to date" ] || fail "re-running $spec: $out"
done
[ "$(snapshot)" = "$generated" ] || fail "re-running the generator changed the tree"

log "a generated file edited by hand is never overwritten"
echo '// edited by hand' >>handlers/item.go
edited=$(snapshot)
for flags in "" "--force"; do
  # shellcheck disable=SC2086 # no flag or one
  if gen "${item[@]}" $flags 2>"$work/err"; then fail "regenerating over an edited file succeeded ($flags)"; fi
  grep -q 'nothing written: handlers/item.go (edited' "$work/err" || fail "unexpected refusal: $(cat "$work/err")"
  [ "$(snapshot)" = "$edited" ] || fail "a refused run changed the tree ($flags)"
done
if gen check >/dev/null 2>&1; then fail "generate check passed with an edited file"; fi
if gen destroy item >/dev/null 2>&1; then fail "destroy removed a resource that others depend on"; fi
sed -i '$ d' handlers/item.go
gen check >/dev/null

log "destroy: the tree is as before apart from the kept migrations"
for name in milestone comment item tag; do gen destroy "$name" >/dev/null; done
gen check
after=$(snapshot)
removed=$(LC_ALL=C comm -23 <(echo "$before" | LC_ALL=C sort) <(echo "$after" | LC_ALL=C sort))
added=$(LC_ALL=C comm -13 <(echo "$before" | LC_ALL=C sort) <(echo "$after" | LC_ALL=C sort) | awk '{print $2}')
[ -z "$removed" ] || fail "destroy left changed or missing files: $removed"
for f in $added; do
  [[ "$f" =~ ^\./migrations/(sqlite|postgres)/[0-9]{4}_(tags|items|comments|milestones)\.(up|down)\.sql$ ]] ||
    fail "destroy left $f behind"
done
[ "$(echo "$added" | wc -l)" -eq 16 ] || fail "want the 16 migration files kept, have: $added"
go vet ./...
go build ./...
go test -count=1 ./handlers -run 'TestRouteTable|TestOpenAPI'
go test -count=1 ./models -run 'TestMigrat'
log "ok"

#!/usr/bin/env bash
# Runs every Go test once, verbosely into a log, and prints the test names
# with their results, so the log shows that the e2e, Redis, PostgreSQL and
# browser tests ran, and the PKCS#11 tests (-tags pkcs11) against SoftHSM2.
# The full log stays in $TEST_LOG for a failure.
set -uo pipefail
log=${TEST_LOG:-$(mktemp -t sesame-test.XXXXXX.log)}
export SESAME_REQUIRE_REDIS=1 SESAME_REQUIRE_POSTGRES=1 SESAME_REQUIRE_CHROMIUM=1 SESAME_REQUIRE_HSM=1
start=$(date +%s)
go test -count=1 -v -timeout 20m ./... >"$log" 2>&1
status=$?
# The HSM signer is built only with -tags pkcs11 (cgo): its tests run
# against SoftHSM2, in the same log, so that they count in the summary.
# -run keeps the rest of those packages from running twice.
CGO_ENABLED=1 go test -count=1 -v -timeout 5m -tags pkcs11 -run '^TestHSM' ./internal/keys/... ./internal/testhsm/ ./cmd/sesame/ ./broker/ >>"$log" 2>&1
hsm=$?
[ $status -eq 0 ] && status=$hsm
# deploy/ is a module of its own (Helm and Kubernetes stay out of
# Sésame's go.mod), which ./... above does not enter: its tests check the
# Dockerfile, the compose file and the Helm chart against the binary.
(cd deploy && go vet ./... && go test -count=1 -v -timeout 10m ./...) >>"$log" 2>&1 || status=1
grep -E '^(\s*--- (PASS|FAIL|SKIP)|ok |FAIL|panic:)' "$log"
# The browser checks' totals (axe-core counts, screenshots folder, time):
# docs/accessibility.md.
grep -E '^\s+a11y_browser_test.go:[0-9]+: a11y: ' "$log" | sed -E 's/^\s+a11y_browser_test.go:[0-9]+: //' || true
pass=$(grep -cE '^\s*--- PASS' "$log"); fail=$(grep -cE '^\s*--- FAIL' "$log"); skip=$(grep -cE '^\s*--- SKIP' "$log")
if [ $status -ne 0 ]; then
  echo "---- failure details (full log: $log) ----"
  grep -B2 -A30 -E '^\s*--- FAIL|^panic:|^FAIL\s' "$log" | head -400
fi
echo "tests: $(( $(date +%s) - start ))s"
echo "$pass passed, $fail failed, $skip skipped"
exit $status

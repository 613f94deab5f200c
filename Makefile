# The test command of the README. It runs every test on SQLite, and on
# PostgreSQL too when TEST_DATABASE_URL is set (CI sets it; see .ci/run).
.PHONY: test
test:
	@if [ -z "$$TEST_DATABASE_URL" ]; then \
	  echo "note: TEST_DATABASE_URL is not set: the PostgreSQL half of the tests is SKIPPED, only SQLite runs."; \
	  echo "      e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable make test"; \
	fi
	go test ./...

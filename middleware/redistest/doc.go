// Package redistest gives tests a Redis to share: clients for the server
// named by TEST_REDIS_URL, a key prefix of their own (its keys are deleted
// when the test ends, so parallel tests and runs never see each other's
// state), and a TCP proxy that a test can cut and restore to play a Redis
// outage. It is test support only: no production code imports it.
//
// When TEST_REDIS_URL is unset the calling test is skipped with a message,
// except in CI (CI set), where a missing service is a failure. When it is
// set, a server that does not answer fails the test.
//
// Dependency rule: redistest imports go-redis and the standard library,
// nothing of this module.
package redistest

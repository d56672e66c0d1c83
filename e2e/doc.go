// Package e2e holds numverify's end-to-end acceptance tests: the built
// binary runs as real processes on real ports against real PostgreSQL, driven
// by simulated devices (each from its own loopback address) and by
// `numverify bench`. The processes, stacks and logins come from
// internal/testbed; the package has no code of its own; see the _test.go
// files:
//
//   - fault_test.go: Postgres stopped for 5 seconds under load (issue 6)
//   - sigterm_test.go: SIGTERM under load, graceful shutdown (issue 6)
//   - soak_test.go: steady load, memory and goroutines (NUMVERIFY_SOAK=1)
//   - logs_test.go: no number, token, code or secret in any log line (issue 6)
//   - camara_test.go: the CAMARA cases against the real authorization server
//     with tokens from the silent login, jwt and opaque formats (issue 4)
//   - proxy_test.go: the device's address behind real nginx and HAProxy (HTTP,
//     PROXY v1 and v2), every forged header refused, CGNAT by port (issue 9)
//   - processes_test.go: the three servers and the SP as separate
//     processes, devices through `numverify device` (issue 5)
//   - browser_test.go: headless Chromium on the SP page, and the compose
//     device's command line (issue 5, issue 13)
//   - radius_test.go: RADIUS accounting from FreeRADIUS's radclient, and
//     `numverify bench --mode radius` checked against its model
//   - wifi_test.go: a device on Wi-Fi, its operator token by EAP-AKA from
//     the entitlement server, redeemed by JWT-bearer and CIBA
//   - replicas_test.go: replicas behind HAProxy, one of each killed under
//     load (NUMVERIFY_E2E_REPLICAS=1, issue 13)
//   - failover_test.go: a Postgres failover to a synchronous standby under
//     load (NUMVERIFY_E2E_FAILOVER=1, issue 13)
//   - compose_test.go: docker-compose.yml brought up for real on podman, the
//     device flow through it, down -v clean (NUMVERIFY_COMPOSE=1, issue 13)
package e2e

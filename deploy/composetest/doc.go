// Package composetest holds the end-to-end test of the demo fleet in
// deploy/compose: it builds the container image, starts six agents in three
// regions and a target farm under Docker, cuts one region off the backbone
// network and checks that the fleet raises no false incident, that the cut
// region calls itself isolated, and that it rejoins when reconnected.
//
// The test needs Docker and docker-compose (v1) or the compose plugin (v2),
// runs for two to four minutes and is skipped unless VANTAGE_DOCKER_TESTS=1:
//
//	VANTAGE_DOCKER_TESTS=1 go test -v -count=1 ./deploy/composetest/
//
// With VANTAGE_DOCKER_STRICT=1 a healthy target's verdict may not even turn
// unknown while the region is cut off (by default: never down, and up again
// by the end of the partition).
//
// It talks to the containers at their addresses on the region networks,
// which the host can reach on Linux only.
package composetest

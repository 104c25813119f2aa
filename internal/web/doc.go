// Package web is `pacswatch serve`: a read-only dashboard over a store (SPEC "serve and
// watch") and the versioned JSON API it is built on.
//
// Pages are rendered on the server (html/template: every string from a server or the store is
// text) with no script at all; the stylesheet and icon are served from the binary, and the
// Content-Security-Policy forbids anything else, so no asset is ever fetched from the network.
// The pages go from the runs of the store (a scan, or the shards of one, store.Groups) to a
// run's report (the world map and the tables per country, as `pacswatch report` builds them:
// report.Build), a country's regions, the systems of a place, what changed since the compared run
// (watch.Changes: what a watch alerts on), and one system's history across every run (first seen
// exposed, fixed, time to fix: history.HostHistory).
//
// A store of a million results is never loaded whole. A run's report streams its results once
// and is kept (finished runs do not change; an unfinished run's report is rebuilt when older
// than a few seconds); the systems of a place come from an index of addresses built in one more
// pass; a page of systems, and a system's history, read only their own addresses
// (store.HostResults). A page whose report is still being built says so and refreshes itself
// rather than keep the browser waiting.
//
// JSON API, version 1 (every path under /api/v1/; errors are {"error": "..."}):
//
//	GET /api/v1/runs                          every run, oldest first, with its per-system figures
//	GET /api/v1/scans/{id}/report             the run's report: what `report --format json --scan id` prints
//	GET /api/v1/scans/{id}/hosts?country=CC&region=CC/NAME&after=IP&limit=N
//	                                          systems found in the run (optionally in one place),
//	                                          in address order, a page at a time ("next" is the
//	                                          after= of the next page)
//	GET /api/v1/scans/{id}/changes            what changed since the run the report compares it with:
//	                                          new exposure, growth, fixes with their time to fix
//	GET /api/v1/hosts/{ip}                    one system across every run: states, episodes, time to fix
//
// /metrics serves Prometheus metrics. Beyond loopback, every path needs the token (CheckListen):
// "Authorization: Bearer TOKEN", or HTTP basic authentication with the token as password.
package web
